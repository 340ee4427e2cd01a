"""Beam search with the LM: it spells lexicon words and the LM resolves an ambiguous frame."""

import math
from pathlib import Path

import torch

from engine.beam import BeamConfig, BeamDecoder, write_lexicon
from engine.lm import build_arpa
from tests.conftest import SENTENCES


def emissions_for(tokenizer, text: str, *, blur: dict[int, int] | None = None) -> torch.Tensor:
    """Log posteriors that spell `text` (blank between pieces); `blur` splits a frame between two ids."""
    ids = tokenizer.encode(text)
    frames = []
    for i in ids:
        frames += [i, 0]
    lp = torch.full((len(frames), tokenizer.vocab_size), math.log(1e-4))
    for t, k in enumerate(frames):
        lp[t, k] = math.log(0.99)
    for t, other in (blur or {}).items():
        lp[t, frames[t]] = math.log(0.45)
        lp[t, other] = math.log(0.55)
    return lp.log_softmax(-1)


def decoder(tmp_path: Path, tokenizer, lm_weight: float) -> BeamDecoder:
    build_arpa(SENTENCES, tmp_path / "lm.arpa")
    write_lexicon({w for s in SENTENCES for w in s.split()} | {"pound", "sound"}, tokenizer, tmp_path / "lex.txt")
    return BeamDecoder(tokenizer, tmp_path / "lex.txt", tmp_path / "lm.arpa", BeamConfig(lm_weight=lm_weight))


def test_clear_emissions_decode_to_their_words(tmp_path: Path, tokenizer) -> None:
    text = "press one for sales"
    tokens = decoder(tmp_path, tokenizer, 0.5).decode(emissions_for(tokenizer, text), frame_offset=10)
    assert tokenizer.decode([t.token_id for t in tokens]) == text
    assert tokens[0].frame == 10 and all(0 < t.prob <= 1 for t in tokens)


def test_empty_input_gives_nothing(tmp_path: Path, tokenizer) -> None:
    assert decoder(tmp_path, tokenizer, 0.5).decode(torch.zeros(0, tokenizer.vocab_size)) == []


def test_online_search_equals_the_whole_utterance_search(tmp_path: Path, tokenizer) -> None:
    beam = decoder(tmp_path, tokenizer, 0.5)
    lp = emissions_for(tokenizer, "please enter your account number followed by the pound key", blur={6: 3, 11: 5})
    whole = beam.decode(lp, frame_offset=7)
    for chunk in (1, 4, 5, lp.shape[0]):
        search = beam.online()
        for i in range(0, lp.shape[0], chunk):
            search.step(lp[i : i + chunk])
        assert search.end(lp, frame_offset=7) == whole
    assert tokenizer.decode([t.token_id for t in whole]).startswith("please enter")
