"""Beam search with a word n-gram LM (shallow fusion), via flashlight-text's lexicon decoder.

The decoder walks a trie of the lexicon's spellings (sentencepiece pieces)
and adds ``lm_weight`` times the KenLM score of each completed word plus
``word_score`` per word. The ARPA file comes from :mod:`engine.lm`.
torchaudio's ``ctc_decoder`` wraps flashlight-text; we only map its output
back to voxgate's :class:`~engine.decoding.Token` so word timing and
confidence work as for greedy decoding.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torchaudio.models.decoder import ctc_decoder

from engine.decoding import Token
from engine.tokenizer import Tokenizer


@dataclass(frozen=True)
class BeamConfig:
    """Search and fusion parameters (stored in a bundle's manifest under ``decoder``).

    Attributes:
        lm_weight: weight of the LM log-probability (shallow fusion).
        word_score: bonus per emitted word (balances deletions against insertions).
        beam_size: hypotheses kept per frame.
        beam_threshold: prune hypotheses this far below the best.
    """

    lm_weight: float = 0.5
    word_score: float = 0.0
    beam_size: int = 16
    beam_threshold: float = 20.0


def write_lexicon(words: Iterable[str], tokenizer: Tokenizer, path: Path) -> int:
    """Write ``word piece piece ...`` lines, spelling each word as the tokenizer does.

    Returns:
        The number of words written.
    """
    lines = []
    for word in sorted(set(words)):
        pieces = [tokenizer.piece(i) for i in tokenizer.encode(word)]
        if pieces:
            lines.append(f"{word} {' '.join(pieces)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Silence file descriptor 2 for a native call: KenLM prints its loading progress bar there."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class BeamDecoder:
    """CTC beam search over a lexicon with a KenLM word LM."""

    def __init__(self, tokenizer: Tokenizer, lexicon: Path, lm: Path, config: BeamConfig) -> None:
        tokens = [tokenizer.piece(i) for i in range(tokenizer.vocab_size)]
        # Sentencepiece has no silence unit: word boundaries live in the pieces' ▁ marks, so the
        # blank doubles as the decoder's silence token.
        with _native_stderr_silenced():
            self._decoder = self._build(tokens, lexicon, lm, config)
        self.config = config

    @staticmethod
    def _build(tokens: list[str], lexicon: Path, lm: Path, config: BeamConfig):
        return ctc_decoder(
            lexicon=str(lexicon), tokens=tokens, lm=str(lm), nbest=1, beam_size=config.beam_size,
            beam_threshold=config.beam_threshold, lm_weight=config.lm_weight, word_score=config.word_score,
            sil_score=0.0, blank_token=tokens[0], sil_token=tokens[0], unk_word="<unk>",
        )

    def decode(self, log_probs: torch.Tensor, *, frame_offset: int = 0) -> list[Token]:
        """Best path of one utterance.

        Args:
            log_probs: ``(U, V)`` log posteriors.
            frame_offset: absolute index of the first frame.

        Returns:
            The emitted tokens with frames and posteriors.
        """
        if log_probs.shape[0] == 0:
            return []
        emissions = log_probs[None].float().contiguous().cpu()
        hyps = self._decoder(emissions, torch.tensor([log_probs.shape[0]], dtype=torch.int32))
        if not hyps or not hyps[0]:
            return []
        best = hyps[0][0]
        out = []
        last = log_probs.shape[0] - 1
        for token_id, step in zip(best.tokens.tolist(), best.timesteps.tolist()):
            # flashlight's paths carry a leading sentinel step, so a timestep may sit one frame
            # late: take whichever of the two frames gives the token its higher posterior.
            frame = max((min(max(f, 0), last) for f in (step - 1, step)), key=lambda f: float(log_probs[f, token_id]))
            out.append(Token(int(token_id), frame_offset + frame, float(log_probs[frame, token_id].exp())))
        return out
