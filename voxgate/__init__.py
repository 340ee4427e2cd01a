"""voxgate: a self-hosted streaming speech-recognition server."""

__version__ = "0.1.0"
