"""The HTTP layer: one package of handlers per dialect over the services of :mod:`server.runtime`."""
