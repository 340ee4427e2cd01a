"""Pure units of the Transcribe CLM service: corpus pieces, the settings kept in a description, statuses,
page tokens, and the tuning's mixture weight."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from protocol.transcribe_api import BaseModelName, InputDataConfig, ModelStatus, Tag
from server.runtime.transcribe_models import (ClmSettings, base_model_for, corpus_pieces,
                                              model_status)
from engine.lm import build_arpa
from server.runtime.transcribe_tuning import WordScorer, mixture_weight, perplexity


def test_corpus_pieces_cut_at_line_ends_and_character_boundaries(tmp_path) -> None:
    text = "".join(f"line {i} é\n" for i in range(100)).encode()
    path = tmp_path / "t.txt"
    path.write_bytes(text)
    pieces = list(corpus_pieces(path, piece_bytes=64))
    assert b"".join(pieces) == text
    assert all(len(p) <= 64 and p.endswith(b"\n") for p in pieces)
    # one line longer than a piece: cut between characters, never inside one
    long = ("é" * 100).encode()
    path.write_bytes(long)
    pieces = list(corpus_pieces(path, piece_bytes=33))
    assert b"".join(pieces) == long and all(len(p) <= 33 for p in pieces)
    assert all(p.decode("utf-8") for p in pieces)
    path.write_bytes(b"")
    assert list(corpus_pieces(path, piece_bytes=8)) == []


def test_settings_round_trip_through_a_description() -> None:
    settings = ClmSettings("en-US", BaseModelName.NARROW_BAND,
                           InputDataConfig("s3://b/train/", "arn:aws:iam::1:role/r", "s3://b/tune/"),
                           (Tag("team", "ivr"),))
    assert ClmSettings.parse(settings.serialize()) == settings
    assert ClmSettings.parse("IVR words") is None  # a Watson model's description: not a CLM
    assert ClmSettings.parse('{"other": 1}') is None
    assert ClmSettings.parse(None) is None


def test_base_model_names_and_statuses() -> None:
    assert base_model_for("en-US", BaseModelName.NARROW_BAND) == "en-US_NarrowbandModel"
    assert base_model_for("en-US", BaseModelName.WIDE_BAND) == "en-US_BroadbandModel"

    def model(status: str, versions: int = 0):
        return SimpleNamespace(status=status, versions=[object()] * versions)

    assert [model_status(model(s)) for s in ("pending", "ready", "training")] == [ModelStatus.IN_PROGRESS] * 3
    assert model_status(model("failed")) is ModelStatus.FAILED
    assert model_status(model("available", 1)) is ModelStatus.COMPLETED
    assert model_status(model("upgrading", 1)) is ModelStatus.COMPLETED  # the trained version keeps serving
    assert model_status(model("training", 1)) is ModelStatus.IN_PROGRESS


def test_mixture_weight_follows_which_model_explains_the_tuning_text() -> None:
    # the CLM explains 3 of 4 sentences far better: the weight is about 3/4
    base = [-50.0, -50.0, -50.0, -20.0]
    clm = [-20.0, -20.0, -20.0, -50.0]
    assert mixture_weight(base, clm) == pytest.approx(0.75, abs=1e-3)
    assert mixture_weight(clm, base) == pytest.approx(0.25, abs=1e-3)
    # the chosen weight gives the tuning text no higher perplexity than either model alone
    w = mixture_weight(base, clm)
    assert perplexity(base, clm, w) <= min(perplexity(base, clm, 1e-9), perplexity(base, clm, 1 - 1e-9))
    # equal scores carry no information: the prior's 0.5 stays
    assert mixture_weight([-10.0] * 3, [-10.0] * 3) == pytest.approx(0.5)
    assert math.isfinite(mixture_weight([-1e6], [0.0]))
    with pytest.raises(ValueError):
        mixture_weight([], [])


def test_tuning_text_like_the_training_text_gets_a_higher_weight(tmp_path) -> None:
    general = ["the weather is nice today", "we went to the market", "the children play in the park",
               "she reads a book every night", "the train leaves at noon"] * 4
    ivr = ["please enter your password followed by the pound key", "press one for sales",
           "please enter your account number", "your password has been changed"] * 4
    build_arpa(general + ivr[:4], tmp_path / "base.arpa")
    build_arpa(ivr, tmp_path / "clm.arpa")
    base, clm = WordScorer(tmp_path / "base.arpa"), WordScorer(tmp_path / "clm.arpa")
    assert len(clm.word_log_probs("press one for sales")) == 5  # four words and the sentence end

    def weight(sentences: list[str]) -> float:
        return mixture_weight([p for s in sentences for p in base.word_log_probs(s)],
                              [p for s in sentences for p in clm.word_log_probs(s)])

    in_domain = weight(["please enter your password", "press one for sales followed by the pound key"])
    off_domain = weight(["the children read a book in the park", "we went to the market at noon"])
    assert in_domain > 0.5 > off_domain
