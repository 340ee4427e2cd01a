"""The custom models loaded for recognition: bounded, least recently used out, and the in-use counts."""

from __future__ import annotations

import asyncio

import pytest

from engine.bundle import load_bundle
from engine.catalog import default_models_dir
from engine.customlm import build_custom_lm
from server.catalog import DataDir
from server.runtime.models import CustomModels

BROADBAND = default_models_dir() / "en-US_BroadbandModel" / "en-US_BroadbandModel.v2026-11-01"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    """A data directory with three trained custom LMs, ``lm/a``, ``lm/b``, ``lm/c``."""
    root = DataDir(tmp_path_factory.mktemp("data"))
    bundle = load_bundle(BROADBAND)
    for name in "abc":
        build_custom_lm(bundle, [f"call {name} support now\nplease call {name} support\n"], [], root.path(f"lm/{name}"))
    return root


def test_language_models_are_cached_and_bounded_least_recently_used_out(data: DataDir) -> None:
    async def scenario() -> None:
        custom = CustomModels(data, max_loaded=2)
        a = await custom.language_model("lm/a")
        assert await custom.language_model("lm/a") is a  # loaded once
        b = await custom.language_model("lm/b")
        await custom.language_model("lm/a")  # a is now the most recently used
        await custom.language_model("lm/c")  # past the bound: b (least recently used) goes
        assert await custom.language_model("lm/a") is a
        assert await custom.language_model("lm/b") is not b  # loaded again
        await custom.close()

    asyncio.run(scenario())


def test_requests_using_custom_models_are_counted_until_they_end(data: DataDir) -> None:
    custom = CustomModels(data, max_loaded=1)
    with custom.using("lm-1", None, "am-1"):
        with custom.using("lm-1"):
            assert custom.in_use == {"lm-1": 2, "am-1": 1}
        assert custom.in_use == {"lm-1": 1, "am-1": 1}
    assert custom.in_use == {}
