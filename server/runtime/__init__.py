"""Runtime services of the server: what the dialect adapters stand on, with no aiohttp.web import."""
