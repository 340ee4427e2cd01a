"""The search pool: live beam searches in a worker process give the words of the in-process search."""

from pathlib import Path

import torch

from engine.beam import write_lexicon
from engine.bundle import load_bundle, save_bundle
from engine.features import FeatureConfig
from engine.lm import build_arpa
from engine.recognizer import Recognizer
from engine.searchpool import SearchPool
from tests.conftest import SENTENCES, tiny_model
from tests.engine.streaming import stream_finals
from tests.engine.test_recognizer import noise


def test_pool_finals_equal_in_process_finals(tmp_path: Path, tokenizer_file, tokenizer) -> None:
    build_arpa(SENTENCES, tmp_path / "lm.arpa")
    write_lexicon({w for s in SENTENCES for w in s.split()}, tokenizer, tmp_path / "lex.txt")
    features = FeatureConfig(sample_rate_hz=16000)
    path = save_bundle(tmp_path / "models", model=tiny_model(features.n_mels), tokenizer_file=tokenizer_file,
                       features=features, name="en-US_BroadbandModel", version="en-US_BroadbandModel.v2026-01-01",
                       locale="en-US", description="tiny", training_data={},
                       decoder={"type": "beam", "lm": "lm.arpa", "lexicon": "lexicon.txt",
                                "config": {"lm_weight": 0.5, "word_score": 0.0, "beam_size": 16,
                                           "beam_threshold": 20.0}},
                       extra_files={"lm.arpa": tmp_path / "lm.arpa", "lexicon.txt": tmp_path / "lex.txt"})
    bundle = load_bundle(path)
    assert bundle.beam is not None
    audio = torch.cat([noise(1.5, seed=3), torch.zeros(16000), noise(1.2, seed=4)])

    def finals(recognizer: Recognizer) -> list:
        return stream_finals(recognizer, recognizer.new_stream(online=True), audio)

    local = finals(Recognizer(bundle))
    pool = SearchPool(path)
    try:
        pool.wait_ready()
        pooled = Recognizer(bundle, search_pool=pool)
        remote = [pooled.rescored(r, r.rescore.result(timeout=60)) if r.rescore is not None else r
                  for r in finals(pooled)]
        abandoned = pooled.new_stream(online=True)
        abandoned.accept_audio(audio[:16000])
        while abandoned.has_chunk:
            pooled.step([abandoned])
        abandoned.discard()
    finally:
        pool.close()
    assert [r.words for r in remote] == [r.words for r in local]
    assert any(r.words for r in local)
