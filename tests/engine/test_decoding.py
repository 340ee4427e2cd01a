import math

import torch

from engine.decoding import Token, greedy_batch, last_ids, tokens_to_words
from engine.tokenizer import BLANK_ID


def logits_for(paths: list[list[int]], vocab: int = 6) -> torch.Tensor:
    """Log posteriors whose arg-max follows each path, with probability 0.9."""
    out = torch.full((len(paths), max(map(len, paths)), vocab), math.log(0.1 / (vocab - 1)))
    for b, path in enumerate(paths):
        for t, k in enumerate(path):
            out[b, t, k] = math.log(0.9)
    return out


def test_greedy_collapses_repeats_and_drops_blanks() -> None:
    lp = logits_for([[0, 3, 3, 0, 3, 4, 4, 0], [5, 5, 5, 0, 0, 1, 0, 0]])
    tokens = greedy_batch(lp, torch.tensor([8, 6]))
    assert [t.token_id for t in tokens[0]] == [3, 3, 4]
    assert [t.frame for t in tokens[0]] == [1, 4, 5]
    assert [t.token_id for t in tokens[1]] == [5, 1]
    assert all(abs(t.prob - 0.9) < 1e-6 for row in tokens for t in row)


def test_greedy_ignores_frames_past_the_length() -> None:
    lp = logits_for([[2, 0, 3, 4]])
    assert [t.token_id for t in greedy_batch(lp, torch.tensor([2]))[0]] == [2]


def test_greedy_continues_across_chunks() -> None:
    path = [0, 2, 2, 2, 0, 2, 3, 3]
    whole = greedy_batch(logits_for([path]), torch.tensor([8]))[0]
    previous, frames, parts = [BLANK_ID], 0, []
    for start in (0, 3, 6):
        chunk = logits_for([path[start : start + 3]])
        n = torch.tensor([chunk.shape[1]])
        parts += greedy_batch(chunk, n, previous=previous, frame_offsets=[frames])[0]
        previous = last_ids(chunk, n, previous)
        frames += chunk.shape[1]
    assert parts == whole


def test_words_with_times_and_confidence(tokenizer) -> None:
    ids = tokenizer.encode("press one for sales")
    tokens = [Token(t, 2 * i, 0.8) for i, t in enumerate(ids)]
    words = tokens_to_words(tokens, tokenizer, frame_seconds=0.08)
    assert [w.word for w in words] == ["press", "one", "for", "sales"]
    assert words[0].start == 0.0
    assert all(w.end > w.start for w in words)
    assert all(abs(w.confidence - 0.8) < 1e-6 for w in words)
    assert words[-1].end == (tokens[-1].frame + 1) * 0.08
