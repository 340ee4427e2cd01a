"""voxgate server: the aiohttp app, catalog, persistence and jobs (see ARCHITECTURE.md)."""
