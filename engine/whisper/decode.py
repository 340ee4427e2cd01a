"""Whisper's decoder over one utterance: the ``whisper`` final pass and attention rescoring.

:class:`UtteranceDecoder` takes an utterance's raw log-mel frames, runs the full-context
(pretrained) encoder over them with Whisper's own normalisation, and decodes with the text
decoder: greedy or a small beam, without timestamps, prompt ``<|startoftranscript|>`` (then the
language and task tokens for multilingual models) and ``<|notimestamps|>``.

Padding: Whisper pads every input to 30 s. Its decoder needs much of that: measured on 40
Allison train-split prompts (tiny.en, greedy, utterances of 1-6 s), WER 3.0% padded to 30 s or
to 15 s, 30.7% to 10 s, 500% to 5 s and 1,749% (repetition loops) with no padding at all, and
1,000%+ when the padding's encoding is computed once and appended instead of encoded with the
utterance. So an utterance is padded to twice its length, at least ``min_pad_s`` (15 s) and at
most 30 s: half the encoder cost of Whisper's rule for short utterances, the same accuracy.

Whisper's text is normalised to voxgate's transcript alphabet (:func:`engine.text.normalize_transcript`:
lower case, numbers spelled out, no punctuation), as Watson writes transcripts without smart formatting.

Shapes: ``T``: mel frames, ``D``: mel bins, ``N``: encoder frames, ``L``: tokens.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import tokenizers
import torch
import torch.nn.functional as F

from engine.confusion import nbest_posteriors
from engine.text import normalize_transcript
from engine.whisper.features import normalise_utterance
from engine.whisper.lora import Adapter, adapted, wrap
from engine.whisper.network import Whisper, quantized

MAX_TOKENS = 160
#: the beam whose finished hypotheses a custom LM rescores (8 was worse on the narrowband tuning audio of
#: benchmarks/customlm.py: 6.6% against 5.2% WER at weight 0.3, twice the deletions; README "Custom language models")
RESCORE_BEAM = 4


@dataclass(frozen=True)
class DecodeOptions:
    """How an utterance is decoded.

    Attributes:
        beam_size: 1 for greedy.
        min_pad_s: pad an utterance with silence to twice its length, at least this many
            seconds (and at most Whisper's 30 s; 30 here is Whisper's own rule).
        length_penalty: none (0) or Whisper's simple length normalisation of beam scores (1).
        int8: decode with an int8 copy of the network (:func:`engine.whisper.network.quantized`).
    """

    beam_size: int = 1
    min_pad_s: float = 15.0
    length_penalty: float = 1.0
    int8: bool = False


#: Whisper's threshold on the gzip compression ratio of a text above which it counts as a repetition loop
LOOP_COMPRESSION_RATIO = 2.4


#: characters per second of audio above which speech is not read aloud any more (fast read speech is about
#: 15-20; the references of the recipe's eval sets reach 20.1; Whisper's loops there ran at 126-391)
MAX_CHARS_PER_SECOND = 25.0


def looping(ids: list[int], text: str, seconds: float | None = None) -> bool:
    """True when a decode ran into the token budget or its text compresses like a repetition loop.

    With ``seconds`` (the utterance's audio), a text that compresses like a loop counts as one only when
    it is also longer than speech that long can be (:data:`MAX_CHARS_PER_SECOND`). A caller who says
    "agent" eight times, or a sentence four times, said what the text holds. Whisper's hallucinated loops
    run far past any speaking rate.
    """
    if len(ids) >= MAX_TOKENS:
        return True
    data = text.encode("utf-8")
    repetitive = len(data) > 40 and len(data) / len(zlib.compress(data)) > LOOP_COMPRESSION_RATIO
    return repetitive and (seconds is None or len(data) > MAX_CHARS_PER_SECOND * seconds)


def collapse_repeats(ids: list[int], *, max_n: int = 16) -> list[int]:
    """``ids`` with every run of three or more consecutive copies of an n-gram (n <= max_n) cut to one."""
    out = list(ids)
    changed = True
    while changed:
        changed = False
        for n in range(1, max_n + 1):
            i = 0
            while i + 3 * n <= len(out):
                gram = out[i:i + n]
                copies = 1
                while out[i + copies * n: i + (copies + 1) * n] == gram:
                    copies += 1
                if copies >= 3:
                    del out[i + n: i + copies * n]
                    changed = True
                i += 1
    return out


class WhisperText:
    """Whisper's byte-level BPE tokenizer (``tokenizer.json``) and its special tokens."""

    def __init__(self, tokenizer_file: Path, n_vocab: int) -> None:
        self._tok = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        self.n_vocab = n_vocab
        self._word_starts: torch.Tensor | None = None
        vocab = self._tok.get_vocab(with_added_tokens=True)
        self.eot = vocab["<|endoftext|>"]
        self.sot = vocab["<|startoftranscript|>"]
        self.sot_prev = vocab["<|startofprev|>"]
        #: Whisper's decoder holds 448 positions; the prompt gets at most half of them (as in Whisper)
        self.max_prompt_tokens = 223
        self.no_timestamps = vocab["<|notimestamps|>"]
        multilingual = n_vocab >= 51865
        self.prompt = [self.sot, vocab["<|en|>"], vocab["<|transcribe|>"], self.no_timestamps] if multilingual \
            else [self.sot, self.no_timestamps]
        #: ids at or above this are special (timestamps included): never emitted as text.
        self.first_special = self.eot

    def word_starts(self) -> torch.Tensor:
        """``(n_vocab,)`` bool: which tokens begin a new word (their text starts with a space), so
        that the word before them is complete (shallow fusion scores it then). Built on first use."""
        if self._word_starts is None:
            self._word_starts = torch.tensor([(self._tok.id_to_token(i) or "").startswith("\u0120")
                                              for i in range(self.n_vocab)])
        return self._word_starts

    def encode(self, text: str) -> list[int]:
        """Text to token ids (a leading space, as Whisper writes words after the prompt)."""
        return self._tok.encode(" " + text.strip(), add_special_tokens=False).ids

    def previous_text(self, text: str) -> tuple[int, ...]:
        """``<|startofprev|>`` and the last tokens of ``text``: a prompt that biases the decoder towards
        its words (empty for empty text)."""
        ids = self.encode(text) if text.strip() else []
        return (self.sot_prev, *ids[-self.max_prompt_tokens:]) if ids else ()

    def decode(self, ids: list[int]) -> str:
        """Token ids to text (special tokens dropped)."""
        return self._tok.decode([i for i in ids if i < self.first_special])


class LMTerm(Protocol):
    """A language-model term for the decoder's hypotheses (a custom LM times its weight, natural log)."""

    def __call__(self, text: str, end: bool = True) -> float:
        """The term of ``text``'s words, the sentence end included when ``end``."""


class _Fusion:
    """Shallow fusion's LM terms for one beam search: per hypothesis (token ids), the term of the
    words it holds complete, and for each next token the term the extended hypothesis holds:

    - a token that goes on with the last word: the same (that word is not complete yet);
    - a token that begins a new word: every word so far is complete;
    - end of text: every word and the sentence end.

    Terms are cached by text (hypotheses share prefixes, and most steps extend a word).
    """

    def __init__(self, text: WhisperText, lm: LMTerm) -> None:
        self._text, self._lm = text, lm
        self._cache: dict[tuple[str, bool], float] = {}

    def _term(self, text: str, end: bool) -> float:
        key = (text, end)
        if key not in self._cache:
            self._cache[key] = self._lm(text, end) if (text.strip() or end) else 0.0
        return self._cache[key]

    def _three(self, ids: list[int]) -> tuple[float, float, float]:
        raw = self._text.decode(ids)
        # the last word may go on, unless the text ends in a space
        complete = raw if raw[-1:].isspace() else " ".join(raw.split()[:-1])
        return self._term(complete, False), self._term(raw, False), self._term(raw, True)

    def gains(self, hyps: list[list[int]]) -> torch.Tensor:
        """``(n, V)``: what each token adds to the term each hypothesis already holds in its score."""
        table = torch.tensor([self._three(h) for h in hyps])  # (n, 3): goes on, new word, end
        starts = self._text.word_starts()
        out = torch.where(starts[None, :], table[:, 1:2], table[:, 0:1])
        out[:, self._text.eot] = table[:, 2]
        return out - table[:, 0:1]


def encoder_input(log_mel: torch.Tensor, n_audio_ctx: int, min_pad_s: float, *, padded: bool = True) -> torch.Tensor:
    """``(T, D)`` raw log10 mel to the ``(T', D)`` normalised, padded input of the full-context encoder:
    Whisper's normalisation over the utterance, silence to twice its length and at least ``min_pad_s``
    (see the module docstring; none unless ``padded``), at most ``2 * n_audio_ctx`` frames, an even count."""
    mel = normalise_utterance(log_mel.float())
    limit = 2 * n_audio_ctx
    mel = mel[:limit]
    target = min(limit, max(int(min_pad_s * 100), 2 * mel.shape[0])) if padded else mel.shape[0]
    if mel.shape[0] < target:
        # Whisper pads the audio with zeros: their log-mel is the floor, 8 below the maximum.
        mel = F.pad(mel, (0, 0, 0, target - mel.shape[0]), value=float(mel.min()))
    if mel.shape[0] % 2:
        mel = F.pad(mel, (0, 0, 0, 1), value=float(mel.min()))
    return mel


@dataclass(frozen=True)
class Decoded:
    """One utterance's transcript (normalised) and, per word, the decoder's confidence (empty: none)."""

    text: str
    confidences: tuple[float, ...]
    alternatives: tuple[str, ...] = ()
    nbest: tuple[tuple[str, float], ...] = ()


class UtteranceDecoder:
    """Whisper's full-context encoder and decoder over one utterance at a time.

    Args:
        whisper: the pretrained model (eval mode).
        text: its tokenizer.
        options: decoding options.
        unpadded: the version's adapter of the decoder for encodings of the utterance alone, without
            the padding (``whisper-fast`` final pass, :mod:`engine.recipe.whisper_u2`), or None.

    Raises:
        AdapterError: an ``unpadded`` adapter that does not fit the network.
    """

    def __init__(self, whisper: Whisper, text: WhisperText, options: DecodeOptions | None = None,
                 unpadded: Adapter | None = None) -> None:
        self.options = options or DecodeOptions()
        # a private copy (int8 or not) with its layers open to custom acoustic models' adapters
        self.whisper = wrap(quantized(whisper) if self.options.int8 else copy.deepcopy(whisper))
        self.text = text
        if unpadded is not None:
            unpadded.check(self.whisper)
        self.unpadded = unpadded

    @torch.inference_mode()
    def encode(self, log_mel: torch.Tensor, *, padded: bool = True) -> torch.Tensor:
        """``(T, D)`` raw log10 mel to ``(1, N, C)`` encoder frames (full context; padded or not)."""
        return self.whisper.encoder(encoder_input(log_mel, self.whisper.dims.n_audio_ctx, self.options.min_pad_s,
                                                  padded=padded)[None])

    @torch.inference_mode()
    def decode(self, log_mel: torch.Tensor, previous: tuple[int, ...] = (),
               rescore: LMTerm | None = None) -> str:
        """The normalised transcript of one utterance (empty for too little audio); see :meth:`transcribe`."""
        return self.transcribe(log_mel, previous, rescore).text

    @torch.inference_mode()
    def transcribe(self, log_mel: torch.Tensor, previous: tuple[int, ...] = (),
                   rescore: LMTerm | None = None, alternatives: int = 0, *,
                   beam_size: int = 0, adapter: Adapter | None = None, fuse: bool = False,
                   nbest: bool = False, padded: bool = True) -> Decoded:
        """The normalised transcript of one utterance, with the decoder's confidence in each word.

        Args:
            previous: a prompt from :meth:`WhisperText.previous_text` (a custom LM's words), or none.
            rescore: a language-model term (natural log, already weighted) added to each finished
                hypothesis of a beam of at least :data:`RESCORE_BEAM` before the best is chosen
                (a custom LM's N-best rescoring), or none.
            alternatives: how many next-best transcripts to return too (Watson's ``max_alternatives``
                minus one), from the same beam, best first and distinct.
            beam_size: the beam for this utterance (0: :attr:`DecodeOptions.beam_size`; 1: greedy).
            adapter: a custom acoustic model's adapter (:mod:`engine.whisper.lora`), applied to the
                encoder and decoder for this utterance, or none.
            fuse: with ``rescore``, shallow fusion: the language-model term also steers the beam search
                itself (each word is scored as soon as the next one starts), instead of only
                reranking what the decoder alone kept in its beam.
            nbest: also return every distinct transcript of the beam (of at least :data:`RESCORE_BEAM`)
                with its posterior over that pool (:func:`engine.confusion.nbest_posteriors`; Watson's
                ``word_alternatives`` are read off it).
            padded: False: the ``whisper-fast`` pass, the utterance encoded alone (no padding: a fraction of
                the encoder's cost) and read by the decoder under the version's ``unpadded`` adapter.

        Raises:
            ValueError: ``padded`` False on a version without the adapter, or with a custom acoustic model's
                ``adapter`` (that adapts the padded pass; one adapter applies at a time).
        """
        if not padded:
            if self.unpadded is None:
                raise ValueError("this version has no decoder adapter for unpadded encodings (whisper-fast)")
            if adapter is not None:
                raise ValueError("a custom acoustic model adapts the padded whisper pass, not whisper-fast")
            adapter = self.unpadded
        with adapted(self.whisper, adapter):
            return self._transcribe(log_mel, previous, rescore, alternatives, beam_size, fuse, nbest, padded)

    def _transcribe(self, log_mel: torch.Tensor, previous: tuple[int, ...], rescore: LMTerm | None,
                    alternatives: int, beam_size: int, fuse: bool = False, nbest: bool = False,
                    padded: bool = True) -> Decoded:
        if log_mel.shape[0] < 10:
            return Decoded("", ())
        # the decoder's cross-attention keys and values, computed once for every pass over this utterance
        cross = self.whisper.decoder.cross_kv(self.encode(log_mel, padded=padded))
        prompt = [*previous, *self.text.prompt]
        beam = beam_size or self.options.beam_size
        if rescore is not None or alternatives > 0 or nbest:
            # hypotheses that differ in punctuation or digits normalise alike: twice the beam for alternatives
            # (and for the N-best's posteriors: a beam of 4 often holds one transcript in four spellings)
            width = max(beam, RESCORE_BEAM, 2 * (alternatives + 1) if alternatives else 0,
                        2 * RESCORE_BEAM if nbest else 0)
            fusion = rescore if fuse else None
            pool = self._beam_pool(cross, width, prompt, fusion)
            # a language model can favour a repeated phrase (its n-grams score well): loops are dropped,
            # and when the fused beam holds nothing else the decoder's own beam is rescored instead
            kept = [(h, sc) for h, sc in pool if not looping(h, self.text.decode(h))]
            if fusion is not None and not kept:
                fusion = None
                pool = self._beam_pool(cross, width, prompt)
                kept = [(h, sc) for h, sc in pool if not looping(h, self.text.decode(h))]
            pool = kept or pool
            texts = [normalize_transcript(self.text.decode(h)) for h, _ in pool]
            # fused scores already hold the language-model term, sentence end included
            lm = rescore if rescore is not None and fusion is None else (lambda _text: 0.0)
            ranked = sorted(range(len(pool)), key=lambda i: -(pool[i][1] + lm(texts[i])) / max(1, len(pool[i][0])))
            decoded = self._with_confidence(cross, prompt, pool[ranked[0]][0])
            others = tuple(dict.fromkeys(texts[i] for i in ranked[1:] if texts[i] != decoded.text))[:alternatives]
            pool_posteriors = nbest_posteriors(texts, [pool[i][1] + lm(texts[i]) for i in range(len(pool))]) \
                if nbest else ()
            return replace(decoded, alternatives=others, nbest=pool_posteriors)
        ids = self._greedy(cross, prompt) if beam <= 1 else self._beam(cross, beam, prompt)
        # the decoder's own hypothesis is checked against the audio's length (a real repetition stays); the
        # pools above are not: a language model's pull towards its own phrases is not speech either
        if looping(ids, self.text.decode(ids), log_mel.shape[0] / 100):
            # Whisper's failure mode on odd audio (robotic voices, hallucinated speech): a phrase
            # repeated until the token budget runs out. Whisper retries at a higher temperature; this
            # pass stays deterministic: the best beam hypothesis that does not loop, else the loop
            # collapsed to one copy.
            pool = self._beam_pool(cross, RESCORE_BEAM, prompt)
            ok = [(h, sc) for h, sc in pool if not looping(h, self.text.decode(h))]
            ids = max(ok, key=lambda item: item[1] / max(1, len(item[0])))[0] if ok else collapse_repeats(ids)
        return self._with_confidence(cross, prompt, ids)

    def _with_confidence(self, cross: list, prompt: list[int], ids: list[int]) -> Decoded:
        """``ids`` as normalised text, each word with the mean probability the decoder gave its tokens
        (one teacher-forced pass). Normalisation may split a word ("24" -> "twenty four"); its parts
        share its confidence. When the per-word normalisation does not give the same words as the
        whole text's, the confidences are left out (the caller keeps its own)."""
        text = normalize_transcript(self.text.decode(ids))
        if not ids:
            return Decoded(text, ())
        tokens = torch.tensor([prompt + ids])
        logits, _ = self.whisper.decoder(tokens[:, :-1], cross)
        probs = torch.softmax(logits[0, len(prompt) - 1:].float(), -1).gather(1, tokens[0, len(prompt):, None])[:, 0]
        words: list[tuple[str, list[float]]] = []
        for token, p in zip(ids, probs.tolist()):
            piece = self.text.decode([token])
            if not words or piece.startswith(" ") or not piece.strip():
                words.append((piece, [p]))
            else:
                words[-1] = (words[-1][0] + piece, words[-1][1] + [p])
        confidences: list[float] = []
        for raw, ps in words:
            confidences += [sum(ps) / len(ps)] * len(normalize_transcript(raw).split())
        if len(confidences) != len(text.split()):
            return Decoded(text, ())
        return Decoded(text, tuple(round(c, 4) for c in confidences))

    def _step_logits(self, tokens, cross, kv):
        logits, kv = self.whisper.decoder(tokens, cross, kv)
        logits = logits[:, -1].float()
        logits[:, self.text.first_special + 1:] = -float("inf")  # no special token but end of text
        return logits, kv

    def _greedy(self, cross: list, prompt: list[int]) -> list[int]:
        tokens = torch.tensor([prompt])
        kv, out = None, []
        for _ in range(MAX_TOKENS):
            logits, kv = self._step_logits(tokens, cross, kv)
            nxt = int(logits[0].argmax())
            if nxt == self.text.eot:
                break
            out.append(nxt)
            tokens = torch.tensor([[nxt]])
        return out

    def _beam(self, cross: list, beam: int, prompt: list[int]) -> list[int]:
        pool = self._beam_pool(cross, beam, prompt)

        def score(item):
            h, s = item
            # the length counts the end of text, so a hypothesis of no words (silence) has length 1
            return s / ((len(h) + 1) ** self.options.length_penalty) if self.options.length_penalty else s
        return max(pool, key=score)[0]

    def _beam_pool(self, cross1: list, beam: int, prompt: list[int],
                   fusion: LMTerm | None = None) -> list[tuple[list[int], float]]:
        """Finished hypotheses (tokens without end of text, summed log-probability) of a beam search over
        the utterance's cross-attention keys and values ``cross1`` (``Decoder.cross_kv``).

        With ``fusion`` (shallow fusion of a word LM) the beam is ranked by the decoder's
        log-probability plus the LM term of the words written so far, and the returned scores hold
        it too (sentence end included). Tokens are pieces of words, so a word is scored when the
        token after it begins a new word (or ends the text): for each hypothesis three LM terms
        (:class:`_Fusion`) cover every next token.
        """
        terms = _Fusion(self.text, fusion) if fusion is not None else None
        cross = [(k.expand(beam, -1, -1), v.expand(beam, -1, -1)) for k, v in cross1]
        logits, kv = self._step_logits(torch.tensor([prompt]), cross1, None)
        logp = F.log_softmax(logits, -1)[0]
        if terms is not None:
            logp = logp + terms.gains([[]])[0]
        top = logp.topk(beam)
        hyps = [([int(t)], float(s)) for s, t in zip(top.values, top.indices)]
        kv = [(k.expand(beam, -1, -1).contiguous(), v.expand(beam, -1, -1).contiguous()) for k, v in kv]
        finished: list[tuple[list[int], float]] = [(h, s) for h, s in hyps if h[-1] == self.text.eot]
        for _ in range(MAX_TOKENS):
            live = [(h, s) for h, s in hyps if h[-1] != self.text.eot]
            if not live or len(finished) >= beam:
                break
            n = len(live)
            last = torch.tensor([[h[-1]] for h, _ in live])
            index = torch.tensor([i for i, (h, _) in enumerate(hyps) if h[-1] != self.text.eot])
            step_kv = [(k[index], v[index]) for k, v in kv]
            logits, step_kv = self._step_logits(last, [(k[:n], v[:n]) for k, v in cross], step_kv)
            logp = F.log_softmax(logits, -1)
            scores = torch.tensor([s for _, s in live])[:, None] + logp
            if terms is not None:
                scores = scores + terms.gains([h for h, _ in live])
            flat = scores.flatten().topk(min(beam * 2, scores.numel()))
            new, rows = [], []
            for s, idx in zip(flat.values.tolist(), flat.indices.tolist()):
                row, tok = divmod(idx, logp.shape[1])
                h = live[row][0] + [tok]
                if tok == self.text.eot:
                    finished.append((h, s))
                elif len(new) < beam:
                    new.append((h, s))
                    rows.append(row)
                if len(new) >= beam:
                    break
            if not new:
                break
            hyps = new
            kv = [(k[rows], v[rows]) for k, v in step_kv]
        pool = finished or hyps
        return [([t for t in h if t != self.text.eot], s) for h, s in pool]

    @torch.inference_mode()
    def score(self, audio: torch.Tensor, texts: list[str]) -> list[float]:
        """Log-probability of each text given encoder frames ``(1, N, C)`` (attention rescoring).

        Args:
            audio: from :meth:`encode`.
            texts: candidate transcripts (e.g. the CTC N-best).

        Returns:
            Per text, the sum of its tokens' log-probabilities, end of text included.
        """
        if not texts:
            return []
        seqs = [self.text.prompt + self.text.encode(t) + [self.text.eot] for t in texts]
        width = max(len(s) for s in seqs)
        tokens = torch.tensor([s + [self.text.eot] * (width - len(s)) for s in seqs])
        cross = [(k.expand(len(seqs), -1, -1), v.expand(len(seqs), -1, -1))
                 for k, v in self.whisper.decoder.cross_kv(audio)]
        logits, _ = self.whisper.decoder(tokens[:, :-1], cross)
        logp = F.log_softmax(logits.float(), -1).gather(2, tokens[:, 1:, None])[..., 0]
        scores = []
        start = len(self.text.prompt) - 1
        for i, s in enumerate(seqs):
            scores.append(float(logp[i, start: len(s) - 1].sum()))
        return scores
