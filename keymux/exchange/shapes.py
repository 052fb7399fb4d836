"""Error bodies in each client API's own shape (they live with the translators: keymux/translate/error_bodies.py)."""

from keymux.translate.error_bodies import gemini_error, openai_error

__all__ = ["gemini_error", "openai_error"]
