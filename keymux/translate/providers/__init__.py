"""Provider codecs: one module per upstream API, each to and from the pivot."""
