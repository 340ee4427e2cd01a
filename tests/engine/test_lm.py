"""The ARPA writer: distributions sum to one, Kneser-Ney continuation counts, KenLM reads it."""

from pathlib import Path

import pytest

from engine.lm import build_arpa
from tests.conftest import SENTENCES


def read_arpa(path: Path) -> tuple[dict, dict]:
    probs, backoffs, order = {}, {}, 0
    for line in path.read_text().splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1])
            continue
        if not order or not line.strip() or line.startswith("\\"):
            continue
        parts = line.split("\t")
        gram = tuple(parts[1].split())
        probs[gram] = 10 ** float(parts[0])
        if len(parts) > 2:
            backoffs[gram] = 10 ** float(parts[2])
    return probs, backoffs


def prob(probs: dict, backoffs: dict, history: tuple, word: str) -> float:
    if history + (word,) in probs:
        return probs[history + (word,)]
    if not history:
        return probs[("<unk>",)]
    return backoffs.get(history, 1.0) * prob(probs, backoffs, history[1:], word)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_every_history_gives_a_distribution(tmp_path: Path, order: int) -> None:
    info = build_arpa(SENTENCES + ["a b c", "b c d e"], tmp_path / "lm.arpa", order=order)
    probs, backoffs = read_arpa(tmp_path / "lm.arpa")
    vocab = [g[0] for g in probs if len(g) == 1 and g[0] != "<s>"]
    assert info["order"] == order and "<unk>" in vocab
    for history in [(), ("<s>",), ("press",), ("press", "one"), ("zebra",), ("the", "quick", "brown"), ("<s>", "a")]:
        history = history[-(order - 1):] if history else history
        total = sum(prob(probs, backoffs, history, w) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-4), history


def test_kneser_ney_prefers_versatile_words_in_backoff(tmp_path: Path) -> None:
    # "francisco" is frequent but only after "san"; "the" follows many words.
    text = ["san francisco is far"] * 20 + [f"{w} the end" for w in ("see", "read", "take", "make", "find")]
    build_arpa(text, tmp_path / "lm.arpa", order=2)
    probs, _ = read_arpa(tmp_path / "lm.arpa")
    assert probs[("the",)] > probs[("francisco",)]


def test_refuses_empty_text_and_low_orders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no words"):
        build_arpa(["", "  "], tmp_path / "lm.arpa")
    with pytest.raises(ValueError, match="order"):
        build_arpa(["a b"], tmp_path / "lm.arpa", order=1)
    assert not (tmp_path / "lm.arpa").exists()
