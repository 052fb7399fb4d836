"""keymux: one endpoint, many LLM API keys, quota-aware."""

__version__ = "0.1.0"
