"""Sentencepiece subword tokenizer with the CTC blank at id 0.

Sentencepiece's ``<unk>`` sits at id 0 by default; voxgate trains with
``unk_id=0`` reused as the CTC blank, since the models never need to emit an
unknown piece (all training text is normalised to ``[a-z' ]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

BLANK_ID = 0
WORD_BOUNDARY = "\u2581"


class Tokenizer:
    """Wraps a sentencepiece model; id 0 is the CTC blank."""

    def __init__(self, model_file: Path) -> None:
        self.model_file = Path(model_file)
        self._sp = spm.SentencePieceProcessor(model_file=str(model_file))
        # Pieces are looked up for every interim result of every live stream: keep them in a list.
        self._pieces = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]

    @property
    def vocab_size(self) -> int:
        """Number of output classes, blank included."""
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of a normalised transcript."""
        return self._sp.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of token ids (blanks ignored)."""
        return self._sp.decode([i for i in ids if i != BLANK_ID])

    def piece(self, token_id: int) -> str:
        """The surface piece of one id (``▁`` marks a word start)."""
        return self._pieces[token_id]

    def starts_word(self, token_id: int) -> bool:
        """True when the piece begins a new word."""
        return self._pieces[token_id].startswith(WORD_BOUNDARY)


def train_tokenizer(sentences: Iterable[str], model_prefix: Path, *, vocab_size: int = 256,
                    model_type: str = "unigram") -> Path:
    """Train a unigram sentencepiece model on normalised sentences.

    Args:
        sentences: training text, one sentence per item.
        model_prefix: output path without extension.
        vocab_size: pieces including the blank (ignored for ``model_type="char"``).
        model_type: ``unigram`` subwords or ``char`` (letters, apostrophe and ``▁``).

    Returns:
        Path of the ``.model`` file.
    """
    model_prefix.parent.mkdir(parents=True, exist_ok=True)
    sentences = list(sentences)
    if model_type == "char":
        vocab_size = len({c for s in sentences for c in s.replace(" ", "")}) + 2  # + blank and ▁
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(model_prefix), vocab_size=vocab_size,
        model_type=model_type, character_coverage=1.0, unk_id=BLANK_ID, bos_id=-1, eos_id=-1, pad_id=-1,
        unk_piece="<blank>", hard_vocab_limit=False, num_threads=1, minloglevel=2,
    )
    return model_prefix.with_suffix(".model")
