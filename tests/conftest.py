"""Shared fixtures: tiny models and tokenizers that train in well under a second."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from engine.bundle import load_bundle, save_bundle
from engine.features import FeatureConfig
from engine.model import ModelConfig, StreamingCTC
from engine.tokenizer import Tokenizer, train_tokenizer

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SENTENCES = [
    "please enter your account number followed by the pound key",
    "the quick brown fox jumps over the lazy dog",
    "thank you for calling how may i help you today",
    "press one for sales press two for support",
    "your call is important to us please stay on the line",
    "goodbye and have a nice day",
] * 20


@pytest.fixture(scope="session", autouse=True)
def _data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Servers started by tests keep their catalog in a temporary data directory, never in the checkout."""
    os.environ["VOXGATE_DATA_DIR"] = str(tmp_path_factory.mktemp("voxgate-data"))


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sentencepiece model trained on a few sentences."""
    return train_tokenizer(SENTENCES, tmp_path_factory.mktemp("tok") / "tok", vocab_size=40)


@pytest.fixture(scope="session")
def tokenizer(tokenizer_file: Path) -> Tokenizer:
    """The small tokenizer, loaded."""
    return Tokenizer(tokenizer_file)


def tiny_model(n_mels: int = 80, vocab_size: int = 40, seed: int = 0) -> StreamingCTC:
    """An untrained model small enough for unit tests, with random but fixed weights."""
    torch.manual_seed(seed)
    model = StreamingCTC(ModelConfig(n_mels=n_mels, vocab_size=vocab_size, channels=24, dilations=(1, 2, 1),
                                     dropout=0.0))
    with torch.no_grad():
        # Sharpen the random head so the best path changes from frame to frame, with blanks between.
        model.head.weight.mul_(30.0)
        model.feature_mean.fill_(-12.0)
        model.feature_std.fill_(3.0)
    return model.eval()


@pytest.fixture()
def tiny_bundle(tmp_path: Path, tokenizer_file: Path):
    """A saved and re-loaded tiny broadband bundle."""
    features = FeatureConfig(sample_rate_hz=16000)
    path = save_bundle(tmp_path / "models", model=tiny_model(features.n_mels), tokenizer_file=tokenizer_file,
                       features=features, name="en-US_BroadbandModel", version="en-US_BroadbandModel.v2026-01-01",
                       locale="en-US", description="tiny test model", training_data={})
    return load_bundle(path)


@pytest.fixture(scope="session")
def whisper_bundle(tmp_path_factory: pytest.TempPathFactory, tokenizer_file: Path):
    """A Whisper-based broadband bundle on the pinned tiny.en weights with an untrained CTC head."""
    from engine.whisper.features import WhisperFeatureConfig
    from engine.whisper.model import WhisperCTCConfig, build_streaming, shared_pretrained

    torch.manual_seed(0)
    config = WhisperCTCConfig(pretrained="whisper-tiny.en", vocab_size=Tokenizer(tokenizer_file).vocab_size)
    model = build_streaming(config, shared_pretrained("whisper-tiny.en"))
    path = save_bundle(tmp_path_factory.mktemp("wmodels"), model=model, tokenizer_file=tokenizer_file,
                       features=WhisperFeatureConfig(16000), name="en-US_BroadbandModel",
                       version="en-US_BroadbandModel.v2026-12-01", locale="en-US", description="test",
                       training_data={}, extra_manifest={"final_pass": "whisper"})
    return load_bundle(path)


@pytest.fixture(scope="session")
def s3_url() -> str:
    """The endpoint of a real S3-compatible server (``VOXGATE_TEST_S3_URL``, which ``.ci/run`` sets).

    Locally: ``export VOXGATE_TEST_S3_URL=$(bash scripts/s3.sh start DIR)``; without it the tests skip,
    except in CI, where they fail.
    """
    url = os.environ.get("VOXGATE_TEST_S3_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must test against S3: VOXGATE_TEST_S3_URL is not set (.ci/run starts scripts/s3.sh)")
        pytest.skip("VOXGATE_TEST_S3_URL not set (bash scripts/s3.sh start DIR prints one)")
    return url
