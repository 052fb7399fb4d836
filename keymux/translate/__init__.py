"""Pure translators between client API formats and upstream API formats.

    openai_gemini   OpenAI chat client  -> Gemini generateContent upstream (and back)
    gemini_openai   Gemini client       -> OpenAI(-compatible) upstream (and back)
    sse             server-sent events framing shared by both stream directions

Functions take and return plain dicts; only stream translators keep state (one object per request).
"""
