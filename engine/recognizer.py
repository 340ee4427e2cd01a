"""Recognition over a model bundle: offline files and live streams, one at a time or batched.

Decoding is greedy for interim results; finals (and offline transcripts) go
through the request's :class:`~engine.finalpass.FinalPass`, chosen once per
stream: the CTC beam search with the word LM (and a custom LM), or Whisper's
decoder over the utterance for the Whisper-based versions.

A :class:`Stream` is sans-model: audio goes in (:meth:`Stream.accept_audio`),
feature chunks come out (:meth:`Stream.take_chunk`), and the model's output
for that chunk goes back in (:meth:`Stream.accept_output`), which yields
interim and final :class:`Result`s. Who runs the model step is up to the
caller: :meth:`Recognizer.step` runs one step for any number of streams at
once (stacking their states), which is what the batch scheduler calls.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from enum import Enum

import torch

from engine.beam import OnlineSearch
from engine.bundle import ModelBundle
from engine.confusion import WordAlternatives, word_alternatives
from engine.customlm import CustomLM, CustomSearch, apply_custom_slots, apply_custom_words, custom_decoder
from engine.finalpass import FinalPass, FinalPassKind, align_words, choose_final_pass, parse_kind
from engine.decoding import Token, Word, greedy_batch, last_ids, tokens_to_words
from engine.endpoint import EndpointConfig, should_close
from engine.features import FeatureStream, log_mel, pull_batch
from engine.model import StreamingCTC, StreamState, TracedStep
from engine.searchpool import RemoteSearch, SearchPool
from engine.tokenizer import BLANK_ID
from engine.whisper.lora import Adapter

DEFAULT_CHUNK_FRAMES = 16  # 160 ms of features per step; the model adds no right context
OFFLINE_CHUNK_FRAMES = 256  # offline steps of a Whisper-based version: 2.56 s (16 attention chunks)
SILENCE_KEPT_FRAMES = 25  # output frames of leading silence kept for the final pass
#: With the ``whisper`` final pass an utterance also opens on frames whose non-blank posterior
#: exceeds this, not only on greedy tokens: the streaming CTC of release v2026-12-01 emits no token
#: for some short words ("four", "m": non-blank at most 0.27 and 0.73) that Whisper's decoder hears,
#: while silence and low noise stay under 0.08.
ACTIVITY_THRESHOLD = 0.2


def check_weight(customization_weight: float) -> None:
    """Raise ValueError unless the customization weight is in [0, 1]."""
    if not 0.0 <= customization_weight <= 1.0:
        raise ValueError(f"customization_weight must be between 0 and 1, got {customization_weight}")


def pad_to_output_frames(features: torch.Tensor, k: int) -> torch.Tensor:
    """Pad ``(T, D)`` frames to a multiple of ``k`` by repeating the last frame (no frames: unchanged)."""
    n = features.shape[0]
    if n % k == 0:
        return features
    return torch.cat([features, features[-1:].expand(k - n % k, -1)])


@dataclass(frozen=True)
class WhisperFinal:
    """What the ``whisper`` final pass makes of an utterance: its words, next-best transcripts, and the
    competing words of each word slot (when the final pass asks for them)."""

    words: list[Word]
    alternatives: tuple[str, ...] = ()
    word_alternatives: tuple[WordAlternatives, ...] = ()


@dataclass(frozen=True)
class Result:
    """One hypothesis of an utterance.

    Attributes:
        words: the words with times (seconds from the stream start) and confidences.
        final: True once the utterance is closed.
        end_of_utterance: why it closed (``silence``, ``end_of_data``, ``full_stop``) or None.
        rescore: on a final whose beam search runs in a :class:`~engine.searchpool.SearchPool`, the
            future of its tokens; its words are greedy until :meth:`Recognizer.rescored` replaces them.
        alternatives: on a final, the next-best transcripts when the request asked for them (``whisper``).
        word_alternatives: on a final, each word slot's competing words when the request asked for them
            (``whisper``; :mod:`engine.confusion`).
    """

    words: tuple[Word, ...]
    final: bool
    end_of_utterance: str | None = None
    rescore: Future | None = field(default=None, compare=False, repr=False)
    alternatives: tuple[str, ...] = ()
    word_alternatives: tuple[WordAlternatives, ...] = ()

    @property
    def transcript(self) -> str:
        """Words joined by spaces."""
        return " ".join(w.word for w in self.words)

    @property
    def confidence(self) -> float:
        """Mean word confidence (1.0 for an empty result)."""
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 1.0


@dataclass
class Transcription:
    """Result of an offline transcription."""

    words: list[Word]
    audio_seconds: float
    processing_seconds: float

    @property
    def transcript(self) -> str:
        """Words joined by spaces."""
        return " ".join(w.word for w in self.words)


class StreamPhase(Enum):
    """Where a stream is: taking audio, flushing after the end of audio, or done."""

    OPEN = "open"
    ENDING = "ending"
    FINISHED = "finished"


@dataclass
class Stream:
    """One live recognition stream; see the module docstring for the protocol."""

    recognizer: Recognizer
    endpoint: EndpointConfig
    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    max_chunks: int = 1
    final_pass: FinalPass | None = None
    online: bool = False
    state: StreamState = field(init=False)
    frames_done: int = field(default=0, init=False)
    audio_seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        bundle = self.recognizer.bundle
        config = bundle.model.config
        k = getattr(config, "chunk_multiple", config.frames_per_output)
        if self.chunk_frames <= 0 or self.chunk_frames % k:
            raise ValueError(f"chunk_frames must be a positive multiple of {k}, got {self.chunk_frames}")
        if self.max_chunks < 1:
            raise ValueError(f"max_chunks must be at least 1, got {self.max_chunks}")
        if self.final_pass is None:
            self.final_pass = choose_final_pass(bundle)
        check_weight(self.final_pass.customization_weight)
        self.state = bundle.model.initial_state(1)
        # Whisper's positions run out after 30 s: such models restart their state between utterances.
        self._restarts = hasattr(bundle.model, "restart_state")
        self._max_utterance_s = min(self.endpoint.max_utterance_seconds,
                                    getattr(config, "max_utterance_seconds", float("inf")))
        self._keep_features = self.final_pass.uses_whisper
        # Speech activity beyond the greedy tokens (see ACTIVITY_THRESHOLD), for the whisper pass.
        self._track_activity = self.final_pass.uses_whisper
        self._first_active: int | None = None
        self._last_active: int | None = None
        self._utterance_features: list[torch.Tensor] = []
        self._features = FeatureStream(bundle.features)
        self._pending = torch.zeros(0, bundle.features.n_mels)
        self._tokens: list[Token] = []
        # The utterance's words so far, built as tokens arrive: the finished words, and the pieces of
        # the last one (a later piece may still extend it). Interims then cost O(new tokens).
        self._done_words: list[Word] = []
        self._open_word: list[Token] = []
        self._utterance_log_probs: list[torch.Tensor] = []
        self._utterance_start = 0
        self._previous_id = BLANK_ID
        self._state_start = 0  # output frame at which the model state last (re)started
        self.phase = StreamPhase.OPEN
        # Finals' beam search runs along the utterance (see engine.beam.OnlineSearch) when live.
        self._beam_online = self.online and self.final_pass.uses_search
        self._search: OnlineSearch | CustomSearch | RemoteSearch | None = None
        self._custom = self.final_pass.custom_lm

    @property
    def finished(self) -> bool:
        """True once the end of audio has been decoded."""
        return self.phase is StreamPhase.FINISHED

    def accept_audio(self, samples: torch.Tensor) -> None:
        """Add float32 mono samples at the model rate.

        Raises:
            RuntimeError: after :meth:`end_audio` (the message names the phase).
        """
        if self.phase is not StreamPhase.OPEN:
            raise RuntimeError(f"audio after the end of the stream (stream is {self.phase.value})")
        self.audio_seconds += samples.numel() / self.recognizer.bundle.sample_rate_hz
        # Features are computed at the next step (batched across streams), not here.
        self._features.push(samples)

    @property
    def has_chunk(self) -> bool:
        """True when :meth:`take_chunk` would return a chunk."""
        if self.phase is StreamPhase.FINISHED:
            return False
        return (self.phase is StreamPhase.ENDING
                or self._pending.shape[0] + self._features.frames_ready >= self.chunk_frames)

    def _add_features(self, frames: torch.Tensor) -> None:
        if frames.shape[0]:
            self._pending = torch.cat([self._pending, frames]) if self._pending.shape[0] else frames

    def end_audio(self) -> None:
        """Mark the end of audio: the next chunk flushes what is left."""
        if self.phase is StreamPhase.OPEN:
            self.phase = StreamPhase.ENDING

    def take_chunk(self) -> tuple[torch.Tensor, int] | None:
        """The next feature chunk ``(T, D)`` and its valid length, or None if not enough audio yet.

        At the end of audio the remainder is padded (by repeating its last
        frame) to a whole number of output frames.
        """
        if self.phase is StreamPhase.FINISHED:
            return None
        if self._features.frames_ready:  # after a batched step's pull_batch there is nothing left here
            self._add_features(self._features.pull())
        k = self.recognizer.bundle.model.config.frames_per_output
        n = self._pending.shape[0]
        if n >= self.chunk_frames:
            # Every whole chunk that is waiting, up to max_chunks: a stream that fell behind catches up.
            take = min(n // self.chunk_frames, self.max_chunks) * self.chunk_frames
            chunk, self._pending = self._pending[:take], self._pending[take:]
            if self._keep_features:
                self._utterance_features.append(chunk)
            return chunk, take
        if self.phase is StreamPhase.OPEN:
            return None
        chunk = pad_to_output_frames(self._pending, k)
        self._pending = self._pending[:0]
        if self._keep_features and chunk.shape[0]:
            self._utterance_features.append(chunk)
        return chunk, chunk.shape[0]

    def accept_output(self, log_probs: torch.Tensor, length: int, state: StreamState, *,
                      greedy: tuple[list[Token], int] | None = None) -> list[Result]:
        """Take the model's output for the last chunk; return the results it produces.

        Args:
            log_probs: ``(U, V)`` log posteriors of the chunk.
            length: valid output frames.
            state: the stream's state after the chunk.
            greedy: the chunk's greedy tokens and last arg-max id when the caller decoded a whole
                batch at once (see :meth:`greedy_inputs`); computed here otherwise.
        """
        self.state = state
        if greedy is None:
            lengths = torch.tensor([length])
            greedy = (greedy_batch(log_probs[None], lengths, previous=[self._previous_id],
                                   frame_offsets=[self.frames_done])[0],
                      last_ids(log_probs[None], lengths, [self._previous_id])[0])
        new, self._previous_id = greedy
        if self._track_activity and length:
            active = torch.nonzero(log_probs[:length, BLANK_ID].exp() < 1.0 - ACTIVITY_THRESHOLD)[:, 0]
            if active.numel():
                if self._first_active is None:
                    self._first_active = self.frames_done + int(active[0])
                self._last_active = self.frames_done + int(active[-1])
        self.frames_done += length
        self._tokens += new
        self._extend_words(new)
        self._utterance_log_probs.append(log_probs[:length])
        heard = bool(self._tokens) or self._first_active is not None
        if not heard:
            # Nothing heard yet: keep only the last second for the final pass, so hours of
            # silence do not pile up in memory.
            kept = torch.cat(self._utterance_log_probs)[-SILENCE_KEPT_FRAMES:]
            self._utterance_log_probs = [kept]
            self._utterance_start = self.frames_done - kept.shape[0]
            if self._keep_features:
                mel_frames = kept.shape[0] * self.recognizer.bundle.model.config.frames_per_output
                self._utterance_features = [torch.cat(self._utterance_features)[-mel_frames:]] \
                    if self._utterance_features else []
            if self._restarts and self.frames_done - self._state_start >= self.recognizer.bundle.model.config.idle_restart_frames:
                self._restart_state()
        elif self._search is not None:
            self._search.step(log_probs[:length])
        elif self._beam_online:
            # The utterance's first token: its search starts over the frames kept so far.
            self._search = self.recognizer.online_search(custom_lm=self._custom,
                                                         customization_weight=self.final_pass.customization_weight)
            self._search.step(torch.cat(self._utterance_log_probs))
        results: list[Result] = []
        at_end = self.phase is StreamPhase.ENDING and self._pending.shape[0] == 0
        firsts = [f for f in (self._tokens[0].frame if self._tokens else None, self._first_active) if f is not None]
        lasts = [f for f in (self._tokens[-1].frame if self._tokens else None, self._last_active) if f is not None]
        close = should_close(self._endpoint(), frames_done=self.frames_done,
                             first_token_frame=min(firsts) if firsts else None,
                             last_token_frame=max(lasts) if lasts else None,
                             frame_seconds=self.recognizer.bundle.frame_seconds)
        if close or (at_end and heard):
            results.append(self._close("end_of_data" if at_end and not close else "silence"))
        elif new:
            results.append(Result(tuple(self._words()), final=False))
        if at_end:
            self.phase = StreamPhase.FINISHED
        return results

    def _endpoint(self) -> EndpointConfig:
        if self._max_utterance_s >= self.endpoint.max_utterance_seconds:
            return self.endpoint
        return EndpointConfig(self.endpoint.silence_seconds, self._max_utterance_s)

    def _restart_state(self) -> None:
        self.state = self.recognizer.bundle.model.restart_state(self.state)
        self._state_start = self.frames_done

    def discard(self) -> None:
        """The stream is abandoned: release its search in the pool.

        Safe while a step of the stream is in flight: the stream is not changed, and the pool
        ignores whatever that step still sends for the dropped search.
        """
        search = self._search
        if isinstance(search, RemoteSearch):
            search.drop()

    def greedy_inputs(self) -> tuple[int, int]:
        """What batched greedy decoding needs from this stream: the last arg-max id and the next frame index."""
        return self._previous_id, self.frames_done

    def _extend_words(self, new: list[Token]) -> None:
        b = self.recognizer.bundle
        for token in new:
            if self._open_word and b.tokenizer.starts_word(token.token_id):
                self._done_words += tokens_to_words(self._open_word, b.tokenizer, b.frame_seconds)
                self._open_word = []
            self._open_word.append(token)

    def _words(self) -> list[Word]:
        b = self.recognizer.bundle
        return self._done_words + tokens_to_words(self._open_word, b.tokenizer, b.frame_seconds)

    def _close(self, reason: str) -> Result:
        """Finalise the open utterance through the stream's final pass."""
        b = self.recognizer.bundle
        rescore = None
        alternatives: tuple[str, ...] = ()
        slots: tuple[WordAlternatives, ...] = ()
        log_probs = torch.cat(self._utterance_log_probs) if self._utterance_log_probs else \
            torch.zeros(0, b.model.config.vocab_size)
        if self.final_pass.uses_whisper:
            features = torch.cat(self._utterance_features) if self._utterance_features else \
                torch.zeros(0, b.features.n_mels)
            final, rescore = self.recognizer.whisper_final(features, log_probs, self._utterance_start,
                                                           fallback=self._words(), final_pass=self.final_pass)
            words, alternatives, slots = final.words, final.alternatives, final.word_alternatives
        elif self._search is not None:
            tokens = self._search.end(log_probs, frame_offset=self._utterance_start)
            if isinstance(tokens, Future):
                # The search runs in a worker process: the final's words come when it answers.
                words, rescore = self._words(), tokens
            else:
                words = self.recognizer.words_of(tokens)
        elif self.final_pass.uses_search and b.beam is not None:
            if self._custom is not None:
                words = custom_decoder(b, self._custom, self.final_pass.customization_weight).decode(
                    log_probs, frame_offset=self._utterance_start)
            else:
                tokens = b.beam.decode(log_probs, frame_offset=self._utterance_start)
                words = tokens_to_words(tokens, b.tokenizer, b.frame_seconds)
        else:
            words = self._words()
        self._search = None
        self._tokens = []
        self._first_active = self._last_active = None
        self._done_words = []
        self._open_word = []
        self._utterance_log_probs = []
        self._utterance_features = []
        self._utterance_start = self.frames_done
        if self._restarts:
            self._restart_state()
        return Result(tuple(words), final=True, end_of_utterance=reason, rescore=rescore, alternatives=alternatives,
                      word_alternatives=slots)


class Recognizer:
    """Runs a :class:`~engine.bundle.ModelBundle` over files and streams."""

    def __init__(self, bundle: ModelBundle, *, search_pool: SearchPool | None = None,
                 final_executor: Executor | None = None) -> None:
        self.bundle = bundle
        self.search_pool = search_pool
        self.final_executor = final_executor
        self.device = next(bundle.model.parameters()).device
        model = bundle.model.eval()
        # The Whisper step has a data-dependent mask; it runs eagerly (its cost is in the matmuls).
        self._step = TracedStep(model) if isinstance(model, StreamingCTC) else model.step

    def new_stream(self, *, endpoint: EndpointConfig | None = None, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                   max_chunks: int = 1, final_pass: FinalPass | None = None, online: bool = False) -> Stream:
        """A fresh stream.

        Args:
            endpoint: when utterances close.
            chunk_frames: feature frames per chunk (a multiple of the model's chunk).
            max_chunks: most whole chunks one step may take when audio piled up.
            final_pass: what makes the finals (:func:`engine.finalpass.choose_final_pass`); None:
                the version's default without a custom LM.
            online: run the CTC search chunk by chunk along the utterance rather than all at its
                end (same result; for live streams, so that a final costs little when it comes).

        Raises:
            ValueError: a bad chunk size or weight.
        """
        return Stream(self, endpoint or EndpointConfig(), chunk_frames, max_chunks, final_pass, online)

    def final_pass(self, requested: str | None = None, *, custom_lm: CustomLM | None = None,
                   customization_weight: float = 0.3, max_alternatives: int = 1, whisper_beam: int = 0,
                   adapter: Adapter | None = None, fusion: bool | None = None,
                   word_alternatives: bool = False) -> FinalPass:
        """:func:`engine.finalpass.choose_final_pass` for this version.

        Raises:
            ValueError: an unknown kind or a weight outside [0, 1].
        """
        check_weight(customization_weight)
        return choose_final_pass(self.bundle, requested, custom_lm=custom_lm,
                                 customization_weight=customization_weight, max_alternatives=max_alternatives,
                                 whisper_beam=whisper_beam, adapter=adapter, fusion=fusion,
                                 word_alternatives=word_alternatives)

    def whisper_final(self, features: torch.Tensor, log_probs: torch.Tensor, frame_offset: int, *,
                      fallback: list[Word], final_pass: FinalPass | None = None) -> tuple[WhisperFinal, Future | None]:
        """Whisper's decoder over an utterance's raw features, with the request's custom LM as
        ``final_pass`` carries it (prompt, N-best rescoring); word times aligned on ``log_probs``.

        With a ``final_executor`` the decode runs there and the words come as a future (the
        returned words are then ``fallback``, the greedy ones, until it resolves).
        """
        if self.final_executor is None:
            return self._whisper_words(features, log_probs, frame_offset, final_pass), None
        return WhisperFinal(fallback), self.final_executor.submit(self._whisper_words, features, log_probs,
                                                                  frame_offset, final_pass)

    def _whisper_words(self, features: torch.Tensor, log_probs: torch.Tensor, frame_offset: int,
                       final_pass: FinalPass | None = None) -> WhisperFinal:
        b = self.bundle
        assert b.whisper is not None
        fp = final_pass or FinalPass(FinalPassKind.WHISPER)
        # the custom LM is read here, off the event loop, on its first use
        decoded = b.whisper.transcribe(features, fp.whisper_prompt, fp.rescorer(), fp.alternatives,
                                       beam_size=fp.whisper_beam, adapter=fp.adapter if fp.padded else None,
                                       fuse=fp.whisper_fusion, nbest=fp.word_alternatives, padded=fp.padded)
        words = align_words(decoded.text, log_probs, b.tokenizer, frame_seconds=b.frame_seconds,
                            frame_offset=frame_offset)
        if len(decoded.confidences) == len(words):
            # the decoder's own certainty is a far better confidence than the streaming CTC's posteriors
            words = [replace(w, confidence=c) for w, c in zip(words, decoded.confidences)]
        # the slots are read off the decoder's own words, then shown as the words are: custom words put in
        slots = word_alternatives(words, decoded.text, decoded.nbest) if fp.word_alternatives else ()
        if fp.custom_lm is not None:
            slots = apply_custom_slots(words, slots, fp.custom_lm) if slots else ()
            words = apply_custom_words(words, fp.custom_lm)
        return WhisperFinal(words, decoded.alternatives, slots)

    def online_search(self, *, custom_lm: CustomLM | None = None,
                      customization_weight: float = 0.3) -> OnlineSearch | CustomSearch | RemoteSearch:
        """A new utterance search: in the search pool when there is one, here otherwise.

        Args:
            custom_lm: mix this custom LM in (ignored at weight 0).
            customization_weight: its share in [0, 1].
        """
        check_weight(customization_weight)
        custom = custom_lm if customization_weight > 0 else None
        if self.search_pool is not None:
            return self.search_pool.search(custom_lm=custom, customization_weight=customization_weight)
        assert self.bundle.beam is not None
        if custom is not None:
            return custom_decoder(self.bundle, custom, customization_weight).online()
        return self.bundle.beam.online()

    def words_of(self, path: list[Token] | list[Word]) -> list[Word]:
        """The words of a search's result: a base search gives tokens, a customised one words."""
        if path and isinstance(path[0], Word):
            return list(path)
        b = self.bundle
        return tokens_to_words(path, b.tokenizer, b.frame_seconds)

    def rescored(self, result: Result, tokens: list[Token] | list[Word] | WhisperFinal) -> Result:
        """A final whose search (or Whisper pass) ran elsewhere, with the words of its result."""
        if isinstance(tokens, WhisperFinal):
            return Result(tuple(tokens.words), final=True, end_of_utterance=result.end_of_utterance,
                          alternatives=tokens.alternatives, word_alternatives=tokens.word_alternatives)
        return Result(tuple(self.words_of(tokens)), final=True, end_of_utterance=result.end_of_utterance)

    def step(self, streams: list[Stream]) -> list[list[Result]]:
        """One batched model step for every stream that has a chunk ready.

        Streams without a ready chunk are skipped (their result list is empty).

        Returns:
            Per stream, the results of this step.
        """
        try:
            return self._step_batch(streams)
        finally:
            if self.search_pool is not None:
                self.search_pool.flush()  # the batch's search work, in one round trip

    @torch.inference_mode()
    def _step_batch(self, streams: list[Stream]) -> list[list[Result]]:
        live = [s for s in streams if not s.finished]
        for s, frames in zip(live, pull_batch([s._features for s in live])):
            s._add_features(frames)
        ready = [(i, s, s.take_chunk()) for i, s in enumerate(streams)]
        ready = [(i, s, c) for i, s, c in ready if c is not None]
        out: list[list[Result]] = [[] for _ in streams]
        # A stream whose audio ended on a chunk boundary has an empty last chunk: nothing for the
        # model, but its open utterance still has to close.
        for i, s, c in ready:
            if c[1] == 0:
                out[i] = s.accept_output(torch.zeros(0, self.bundle.model.config.vocab_size), 0, s.state,
                                         greedy=([], s.greedy_inputs()[0]))
        ready = [(i, s, c) for i, s, c in ready if c[1] > 0]
        if not ready:
            return out
        width = max(c[0].shape[0] for _, _, c in ready)
        d = self.bundle.features.n_mels
        feats = torch.zeros(len(ready), width, d)
        for row, (_, _, (chunk, _n)) in enumerate(ready):
            feats[row, : chunk.shape[0]] = chunk
        lengths = torch.tensor([c[1] for _, _, c in ready])
        state = self.bundle.model.stack_states([s.state for _, s, _ in ready]).to(self.device)
        log_probs, out_lengths, new_state = self._step(feats.to(self.device), lengths.to(self.device), state)
        log_probs, out_lengths = log_probs.cpu(), out_lengths.cpu()
        # Greedy decoding of the whole batch in one go; each stream then only files its tokens.
        previous, offsets = zip(*(s.greedy_inputs() for _, s, _ in ready))
        tokens = greedy_batch(log_probs, out_lengths, previous=list(previous), frame_offsets=list(offsets))
        last = last_ids(log_probs, out_lengths, list(previous))
        for row, ((i, s, _), st) in enumerate(zip(ready, self.bundle.model.split_states(new_state.to("cpu")))):
            out[i] = s.accept_output(log_probs[row], int(out_lengths[row]), st, greedy=(tokens[row], last[row]))
        return out

    def run(self, stream: Stream, samples: torch.Tensor) -> list[Result]:
        """Feed a whole signal through a stream chunk by chunk; return its final results."""
        stream.accept_audio(samples)
        stream.end_audio()
        finals = []
        while not stream.finished:
            finals += [r for r in self.step([stream])[0] if r.final]
        return [r if r.rescore is None else self.rescored(r, r.rescore.result()) for r in finals]

    @torch.inference_mode()
    def transcribe(self, samples: torch.Tensor, *, custom_lm: CustomLM | None = None,
                   customization_weight: float = 0.3, final_pass: str | None = None,
                   fusion: bool | None = None, whisper_beam: int = 0) -> Transcription:
        """Offline recognition of a whole signal.

        The older (convolutional) architecture runs one model step over the whole signal. A
        Whisper-based version runs its streaming computation in large steps (the block-causal
        mask makes the outputs the same as a live stream's), utterance by utterance, each final
        through the chosen final pass.

        Args:
            samples: float32 mono at the model rate.
            custom_lm: a custom language model mixed into the beam search (when the bundle has one).
            customization_weight: its share in [0, 1] (0: the base search alone).
            final_pass: the final pass by name (None: the version's default).
            fusion: the ``whisper`` pass fuses the custom LM into its beam search instead of rescoring
                the beam (None: :data:`engine.finalpass.WHISPER_FUSION`).
            whisper_beam: the ``whisper`` pass's beam (0: the version's own decode).

        Raises:
            ValueError: a weight outside [0, 1] or an unknown final pass.
        """
        check_weight(customization_weight)
        began = time.perf_counter()
        b = self.bundle
        if not isinstance(b.model, StreamingCTC):
            chosen = self.final_pass(final_pass, custom_lm=custom_lm, customization_weight=customization_weight,
                                     fusion=fusion, whisper_beam=whisper_beam)
            stream = self.new_stream(chunk_frames=OFFLINE_CHUNK_FRAMES, final_pass=chosen)
            words = [w for r in self.run(stream, samples) for w in r.words]
            return Transcription(words, samples.numel() / b.sample_rate_hz, time.perf_counter() - began)
        if final_pass is not None and parse_kind(final_pass) is FinalPassKind.GREEDY:
            custom_lm = None
        feats = pad_to_output_frames(log_mel(samples, b.features), b.model.config.frames_per_output)
        padded = feats.shape[0]
        words: list[Word] = []
        if padded:
            log_probs, lengths = b.model(feats[None].to(self.device), torch.tensor([padded], device=self.device))
            if b.beam is not None and custom_lm is not None and customization_weight > 0:
                words = custom_decoder(b, custom_lm, customization_weight).decode(log_probs[0, : int(lengths[0])].cpu())
            else:
                if b.beam is not None and not (final_pass and parse_kind(final_pass) is FinalPassKind.GREEDY):
                    tokens = b.beam.decode(log_probs[0, : int(lengths[0])].cpu())
                else:
                    tokens = greedy_batch(log_probs.cpu(), lengths.cpu())[0]
                words = tokens_to_words(tokens, b.tokenizer, b.frame_seconds)
        return Transcription(words, samples.numel() / b.sample_rate_hz, time.perf_counter() - began)
