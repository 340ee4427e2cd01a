"""The placeholder server over a real socket: it loads real bundles and lists them."""

import asyncio
import json
import socket

import aiohttp
from aiohttp import web

from server.app import make_app
from server.http.keys import RELEASES


async def _serve_and_get(models_dir, paths: list[str]) -> list[tuple[int, dict]]:
    runner = web.AppRunner(make_app(models_dir))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sock: socket.socket = site._server.sockets[0]  # the port the OS chose
    port = sock.getsockname()[1]
    out = []
    try:
        async with aiohttp.ClientSession() as session:
            for path in paths:
                async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                    out.append((resp.status, await resp.json()))
    finally:
        await runner.cleanup()
    return out


def test_health_and_models(tiny_bundle) -> None:
    models_dir = tiny_bundle.path.parents[1]
    (health, models, one, missing) = asyncio.run(asyncio.wait_for(_serve_and_get(
        models_dir, ["/healthz", "/v1/models", "/v1/models/en-US_BroadbandModel", "/v1/models/xx-XX_Nope"]), 60))
    assert health == (200, {"status": "ok", "models": ["en-US_BroadbandModel.v2026-01-01"],
                            "loaded": ["en-US_BroadbandModel.v2026-01-01"], "sessions": 0})
    assert models[0] == 200 and [m["name"] for m in models[1]["models"]] == ["en-US_BroadbandModel"]
    assert one[1]["rate"] == 16000 and one[1]["language"] == "en-US"
    assert missing == (404, {"code": 404, "code_description": "Not Found", "error": "Model xx-XX_Nope not found"})


def test_a_registered_release_is_served_without_a_restart(server_factory, tokenizer_file, tmp_path) -> None:
    """Issue 13, deviation 7: a base version installed into the data directory while the server runs is
    served within ``release_check_s``; new requests get it (the newest), and it is loaded first."""
    import time

    from engine.bundle import save_bundle
    from engine.features import FeatureConfig
    from tests.conftest import tiny_model

    server = server_factory({"server": {"release_check_s": 0.1}}, data_dir=tmp_path / "data")
    newer = "en-US_BroadbandModel.v2026-06-01"
    save_bundle(tmp_path / "data" / "models", model=tiny_model(80, seed=1), tokenizer_file=tokenizer_file,
                features=FeatureConfig(sample_rate_hz=16000), name="en-US_BroadbandModel", version=newer,
                locale="en-US", description="a newer release", training_data={})

    async def main():
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                async with http.get(f"{server.http}/healthz") as r:
                    health = await r.json()
                if newer in health["models"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            async with http.get(f"{server.http}/v1/models/en-US_BroadbandModel") as r:
                model = await r.json()
            return health, model
    health, model = asyncio.run(main())
    assert health["models"] == ["en-US_BroadbandModel.v2026-01-01", newer] and newer in health["loaded"]
    assert [v["version"] for v in model["versions"]] == ["en-US_BroadbandModel.v2026-01-01", newer]
    assert server.models.newest()["en-US_BroadbandModel"].version == newer


def test_a_release_that_does_not_load_is_refused_once_and_serving_goes_on(server_factory, tmp_path, caplog) -> None:
    import shutil

    server = server_factory({"server": {"release_check_s": 0}}, data_dir=tmp_path / "data")
    [shipped] = server.models.versions.values()
    broken = tmp_path / "data" / "models" / "en-US_BroadbandModel" / "en-US_BroadbandModel.v2026-06-01"
    shutil.copytree(shipped.installed.path, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest.update(version=broken.name, created="2026-06-01")
    (broken / "manifest.json").write_text(json.dumps(manifest))
    (broken / manifest.get("weights", "model.pt")).write_bytes(b"not a checkpoint")

    async def refresh():
        return await server.app[RELEASES].refresh(), await server.app[RELEASES].refresh()
    first, again = asyncio.run_coroutine_threadsafe(refresh(), server._loop).result(60)
    assert first == again == []
    assert list(server.models.versions) == [shipped.version]
    assert [r.getMessage() for r in caplog.records if "does not load" in r.getMessage()] == [
        f"base model version {broken.name} at {broken} does not load; not serving it (fix it and restart the server)"]
