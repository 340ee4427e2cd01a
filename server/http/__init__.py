"""HTTP adapters of voxgate's server, one subpackage per face (``ui``: the web page)."""
