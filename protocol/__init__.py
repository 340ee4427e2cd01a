"""voxgate protocol: sans-I/O wire formats (stdlib only). Filled in by the gateway issue."""
