"""Client API codecs: one module per API a client speaks, each to and from the pivot."""
