"""CTC decoding: batched greedy search, streaming-safe, and words with times.

Shape legend: ``B``: batch, ``U``: output frames, ``V``: vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.tokenizer import BLANK_ID, WORD_BOUNDARY, Tokenizer


@dataclass(frozen=True)
class Token:
    """One emitted CTC token.

    Attributes:
        token_id: sentencepiece id (never the blank).
        frame: absolute output-frame index where it was emitted.
        prob: posterior of the token at that frame.
    """

    token_id: int
    frame: int
    prob: float


@dataclass(frozen=True)
class Word:
    """A recognised word with its time span in seconds and a confidence in [0, 1]."""

    word: str
    start: float
    end: float
    confidence: float

    def to_dict(self) -> dict:
        """JSON form: ``word``, ``start``, ``end``, ``confidence``."""
        return {"word": self.word, "start": round(self.start, 2), "end": round(self.end, 2),
                "confidence": round(self.confidence, 3)}


def greedy_batch(log_probs: torch.Tensor, lengths: torch.Tensor, *, previous: list[int] | None = None,
                 frame_offsets: list[int] | None = None) -> list[list[Token]]:
    """Best-path CTC decoding of a batch, continuable across chunks.

    Args:
        log_probs: ``(B, U, V)`` log posteriors.
        lengths: ``(B,)`` valid frames per row.
        previous: per row, the arg-max id of the frame before this chunk
            (blank for a fresh stream), so a token spanning a chunk boundary
            is not emitted twice.
        frame_offsets: per row, the absolute index of this chunk's first frame.

    Returns:
        Per row, the tokens emitted in this chunk.
    """
    B = log_probs.shape[0]
    best_lp, best = log_probs.max(dim=-1)  # (B, U)
    prev_ids = torch.tensor(previous if previous is not None else [BLANK_ID] * B)
    shifted = torch.cat([prev_ids[:, None].to(best.device), best[:, :-1]], dim=1)
    emit = (best != BLANK_ID) & (best != shifted)
    emit &= torch.arange(best.shape[1], device=best.device)[None, :] < lengths[:, None].to(best.device)
    offsets = frame_offsets or [0] * B
    out: list[list[Token]] = [[] for _ in range(B)]
    rows, cols = emit.nonzero(as_tuple=True)
    probs = best_lp[rows, cols].exp().tolist()
    for r, c, p, t in zip(rows.tolist(), cols.tolist(), probs, best[rows, cols].tolist()):
        out[r].append(Token(t, offsets[r] + c, p))
    return out


def last_ids(log_probs: torch.Tensor, lengths: torch.Tensor, previous: list[int]) -> list[int]:
    """Arg-max id of each row's last valid frame (``previous`` where a row had none)."""
    best = log_probs.argmax(dim=-1)
    return [int(best[i, int(n) - 1]) if int(n) > 0 else previous[i] for i, n in enumerate(lengths.tolist())]


def tokens_to_words(tokens: list[Token], tokenizer: Tokenizer, frame_seconds: float) -> list[Word]:
    """Group pieces into words (``▁`` starts a word) with times and confidences.

    A word starts at its first piece's frame and ends one frame after its
    last piece; its confidence is the geometric mean of its pieces' posteriors.
    """
    groups: list[list[Token]] = []
    for tok in tokens:
        if not groups or tokenizer.starts_word(tok.token_id):
            groups.append([tok])
        else:
            groups[-1].append(tok)
    words = []
    for group in groups:
        text = "".join(tokenizer.piece(t.token_id) for t in group).replace(WORD_BOUNDARY, "").strip()
        if not text:
            continue
        conf = math.exp(sum(math.log(max(t.prob, 1e-6)) for t in group) / len(group))
        words.append(Word(text, group[0].frame * frame_seconds, (group[-1].frame + 1) * frame_seconds, conf))
    return words
