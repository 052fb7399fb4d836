"""Pure translators between API formats, through one pivot (docs/pivot.md).

    pivot       the neutral request / response / stream delta, and Usage
    clients/    one module per client API: its request -> pivot; pivot -> its answer, stream, errors
    providers/  one module per upstream API: pivot -> its request; its answer and stream -> pivot
    registry    the client and provider codecs by name
    sse         server-sent events: the one decoder and the one encoder

Functions take and return plain dicts or pivot objects; only stream codecs keep state (one object per request).
"""
