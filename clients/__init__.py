"""voxgate clients: client library, streaming CLI and load generator. Filled in by the gateway issue."""
