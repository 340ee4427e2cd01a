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
from flashlight.lib.text.decoder import CriterionType, LexiconDecoder, LexiconDecoderOptions, SmearingMode, Trie
from flashlight.lib.text.dictionary import load_words
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
def native_stderr_silenced() -> Iterator[None]:
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
        with native_stderr_silenced():
            self._decoder = self._build(tokens, lexicon, lm, config)
        self.config = config
        self._lexicon = lexicon
        self._online: tuple | None = None

    @property
    def lexicon(self) -> Path:
        """The lexicon file (``word piece piece ...`` lines)."""
        return self._lexicon

    @property
    def ctc(self):
        """torchaudio's decoder: its ``tokens_dict``, ``word_dict``, KenLM ``lm`` and ``blank`` index
        are what a customised search (:mod:`engine.customlm`) builds on."""
        return self._decoder

    def online(self) -> OnlineSearch:
        """A search that takes an utterance chunk by chunk (one per live stream).

        It shares this decoder's LM and lexicon trie; the trie is built at the first call.
        """
        if self._online is None:
            self._online = self._online_parts()
        return OnlineSearch(LexiconDecoder(*self._online), self._decoder.blank)

    def _online_parts(self) -> tuple:
        # The arguments torchaudio's ctc_decoder gives flashlight's LexiconDecoder, built once so
        # every live stream's search shares the trie and the KenLM model (torchaudio keeps neither
        # in reach for a second decoder, so the trie is built here the way it builds its own).
        ctc, c = self._decoder, self.config
        tokens_dict, word_dict, lm = ctc.tokens_dict, ctc.word_dict, ctc.lm
        blank = ctc.blank
        trie = Trie(tokens_dict.index_size(), blank)
        start = lm.start(False)
        for word, spellings in load_words(str(self._lexicon)).items():
            word_idx = word_dict.get_index(word)
            _, score = lm.score(start, word_idx)
            for spelling in spellings:
                trie.insert([tokens_dict.get_index(t) for t in spelling], word_idx, score)
        trie.smear(SmearingMode.MAX)
        options = LexiconDecoderOptions(beam_size=c.beam_size, beam_size_token=tokens_dict.index_size(),
                                        beam_threshold=c.beam_threshold, lm_weight=c.lm_weight,
                                        word_score=c.word_score, unk_score=float("-inf"), sil_score=0.0,
                                        log_add=False, criterion_type=CriterionType.CTC)
        return options, trie, lm, blank, blank, word_dict.get_index("<unk>"), [], False

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
        return path_tokens(best.tokens.tolist(), best.timesteps.tolist(), log_probs, frame_offset)


def path_tokens(token_ids: list[int], steps: list[int], log_probs: torch.Tensor, frame_offset: int) -> list[Token]:
    """voxgate tokens (frame, posterior) of a decoded path."""
    out = []
    last = log_probs.shape[0] - 1
    for token_id, step in zip(token_ids, steps):
        # flashlight's paths carry a leading sentinel step, so a timestep may sit one frame
        # late: take whichever of the two frames gives the token its higher posterior.
        frame = max((min(max(f, 0), last) for f in (step - 1, step)), key=lambda f: float(log_probs[f, token_id]))
        out.append(Token(int(token_id), frame_offset + frame, float(log_probs[frame, token_id].exp())))
    return out


class OnlineSearch:
    """One utterance's beam search fed chunk by chunk: the cost is spread over the utterance,
    and closing it costs little (see :meth:`BeamDecoder.online`)."""

    def __init__(self, decoder: LexiconDecoder, blank: int) -> None:
        self._decoder = decoder
        self._blank = blank
        self._decoder.decode_begin()

    def step(self, log_probs: torch.Tensor) -> None:
        """Advance over ``(U, V)`` log posteriors."""
        if log_probs.shape[0]:
            emissions = log_probs.float().contiguous().cpu()
            self._decoder.decode_step(emissions.data_ptr(), emissions.shape[0], emissions.shape[1])

    def end(self, log_probs: torch.Tensor, *, frame_offset: int = 0) -> list[Token]:
        """Finish; return the best path's tokens.

        Args:
            log_probs: every ``(U, V)`` frame the search was fed (for token frames and posteriors).
            frame_offset: absolute index of the first frame.
        """
        self._decoder.decode_end()
        hyps = self._decoder.get_all_final_hypothesis()
        if not hyps or log_probs.shape[0] == 0:
            return []
        path = list(hyps[0].tokens)
        # As torchaudio reads a path: a token starts where it differs from the step before, blanks dropped.
        ids, steps = [], []
        for i, t in enumerate(path):
            if t != self._blank and (i == 0 or t != path[i - 1]):
                ids.append(t)
                steps.append(i)
        return path_tokens(ids, steps, log_probs, frame_offset)
