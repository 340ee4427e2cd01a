"""Custom language models: a user's corpora and words, fused with the base LM at decoding time.

A custom LM (Watson's "custom language model") is a folder built by
:func:`build_custom_lm` from the user's text and :class:`CustomWord` list:

    lm.arpa       interpolated Kneser-Ney word n-gram of the corpora (and each custom word once)
    lexicon.txt   spellings (sentencepiece pieces) of the custom words and the corpora's OOV words
    words.json    word -> the text shown for it (``display_as``, else the word as the user wrote it)
    summary.json  what :func:`build_custom_lm` returned, plus a build id (the decoder cache key)

Decoding (Watson semantics): the search scores a word with the mixture
``P(w | h) = (1 - c) P_base(w | h) + c P_custom(w | h)`` at ``customization_weight``
``c``, fused with the bundle's tuned ``lm_weight`` and ``word_score``; words of the
custom lexicon join the search trie. ``c == 0`` means "no customisation": the base
search runs unchanged.

Why a mixture LM in Python over a statically merged ARPA (measured on the shipped
models, ``benchmarks/reports/customlm.md``): the weight is a per-request parameter.
The mixture reuses the two loaded KenLM models, so a new (custom LM, weight) costs
one trie build, 0.4 s, and the decoders are cached. A merged ARPA would be a new
model per weight: merging means evaluating every n-gram of the union under both
models and recomputing the backoff weights in Python (parsing the base's 340k
n-grams alone takes 0.6 s), then writing and loading 10 MB. The price is search
speed: flashlight calls the LM from C++ for every word a hypothesis completes
(about 75 calls per output frame), and each Python call costs ~2 µs, so a live
step (160 ms of audio) takes 0.8-1.2 ms with the custom LM against 0.24-0.34 ms
without, under 1% of a core per stream. WER is the same mixture either way (a
merged ARPA only approximates it through its backoff weights).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import threading
import unicodedata
import uuid
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from flashlight.lib.text.decoder import (
    LM,
    CriterionType,
    LexiconDecoder,
    LexiconDecoderOptions,
    LMState,
    SmearingMode,
    Trie,
)
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary, load_words

from engine.beam import native_stderr_silenced, path_tokens
from engine.confusion import WordAlternatives
from engine.decoding import Token, Word
from engine.files import swap_in
from engine.lm import build_arpa
from engine.text import normalize_transcript
from engine.tokenizer import BLANK_ID, Tokenizer

LM_FILE = "lm.arpa"
LEXICON_FILE = "lexicon.txt"
WORDS_FILE = "words.json"
SUMMARY_FILE = "summary.json"
PROMPT_FILE = "prompt.txt"
SPOKEN_FILE = "spoken.json"
#: the longest spoken form (in words) of a custom word that :func:`apply_custom_words` looks for
MAX_SPOKEN_WORDS = 8
#: characters of prompt text for Whisper's decoder (its prompt holds at most 223 tokens; ~4 characters each)
PROMPT_CHARS = 300
MAX_SOUNDS_LIKE = 5
MAX_SOUNDS_LIKE_CHARS = 40
MAX_WORD_CHARS = 100
DECODER_CACHE_SIZE = 8  # built decoders kept per base decoder, by (custom LM, build, weight)


@dataclass(frozen=True)
class CustomWord:
    """A word the user adds to a custom model.

    Attributes:
        word: the word as written (``IEEE``, ``T-Mobile``, ``Zorblax``).
        sounds_like: up to five spoken forms (``I triple E``), each a spelling of the word.
        display_as: what results show for it (default: ``word``).
    """

    word: str
    sounds_like: tuple[str, ...] = ()
    display_as: str | None = None


@dataclass(frozen=True)
class CorpusAnalysis:
    """Word counts of a corpus after normalisation.

    Attributes:
        total_words: number of words.
        oov_words: words outside the base vocabulary, with their counts.
    """

    total_words: int
    oov_words: dict[str, int]


def word_key(text: str) -> str:
    """The LM's token for a word: its normalised form, words joined by ``_`` (``T-Mobile`` -> ``t_mobile``)."""
    return normalize_transcript(text).replace(" ", "_")


def base_vocabulary(bundle) -> frozenset[str]:
    """The words of the bundle's lexicon (empty when it has no beam decoder)."""
    if bundle.beam is None:
        return frozenset()
    return frozenset(load_words(str(bundle.beam.lexicon)).keys())


def prompt_text(words: list[CustomWord], *, budget: int = PROMPT_CHARS) -> str:
    """The glossary a Whisper final pass is prompted with (``<|startofprev|>``) for this custom LM:
    its custom words as they are displayed, while they fit in ``budget`` characters.

    Whisper conditions on the text before its ``<|startoftranscript|>`` as on what was said before,
    which makes it write those words: on release v2026-12-01 a custom word it never writes
    unprompted ("Vorlaxa" -> "for the") comes out right. The corpora stay out of the prompt: their
    sentences made the Allison test split worse (7.2% against 4.9% with the N-best rescoring alone),
    and their out-of-vocabulary words gave no gain on train-split audio (3.4% either way), so the
    corpora act through the rescoring only.
    """
    out, used = [], 0
    for word in dict.fromkeys((w.display_as or w.word).strip() for w in words):
        if used + len(word) + 2 > budget:
            break
        out.append(word)
        used += len(word) + 2
    return ", ".join(out)


def _lines(text: str) -> list[str]:
    return [n for n in (normalize_transcript(line) for line in text.splitlines()) if n]


def analyze_corpus(text: str, vocabulary: frozenset[str]) -> CorpusAnalysis:
    """Count a corpus's words and those outside ``vocabulary``, each line normalised.

    Raises:
        ValueError: when no line has a word after normalisation.
    """
    words = [w for line in _lines(text) for w in line.split()]
    if not words:
        raise ValueError("the corpus has no words: after normalisation (letters, apostrophes, numbers "
                         "spelled out) every line is empty")
    return CorpusAnalysis(len(words), dict(Counter(w for w in words if w not in vocabulary)))


def _speakable(text: str, tokenizer: Tokenizer) -> bool:
    normal = normalize_transcript(text)
    return bool(normal) and BLANK_ID not in tokenizer.encode(normal)


def word_errors(word: CustomWord, tokenizer) -> list[str]:
    """Validation messages for one custom word; an empty list means it is valid.

    Args:
        word: the word to check.
        tokenizer: the base model's tokenizer (a spelling must be made of its pieces).
    """
    errors = []
    if not word.word.strip():
        return ["word must not be empty"]
    texts = [("word", word.word), *(("sounds_like", x) for x in word.sounds_like)]
    if word.display_as is not None:
        texts.append(("display_as", word.display_as))
    controls = [what for what, text in texts if any(unicodedata.category(ch) == "Cc" for ch in text)]
    if controls:
        return [f"{' and '.join(dict.fromkeys(controls))} of {word.word!r} contains control characters (NUL, "
                "newline, tab, ...), which are not allowed"]
    if any(ch.isspace() for ch in word.word.strip()):
        errors.append(f"word {word.word.strip()!r} contains spaces: a word is one token (join the parts of a compound "
                      "with - or _, and give how it is said in sounds_like)")
    if len(word.word) > MAX_WORD_CHARS:
        errors.append(f"word {word.word[:20]!r}... is longer than {MAX_WORD_CHARS} characters")
    if not _speakable(word.word, tokenizer):
        errors.append(f"word {word.word!r} has no letters or digits to recognise")
    if len(word.sounds_like) > MAX_SOUNDS_LIKE:
        errors.append(f"word {word.word!r} has {len(word.sounds_like)} sounds_like; at most {MAX_SOUNDS_LIKE}")
    for spoken in word.sounds_like:
        if len(spoken) > MAX_SOUNDS_LIKE_CHARS:
            errors.append(f"sounds_like {spoken!r} of {word.word!r} is longer than {MAX_SOUNDS_LIKE_CHARS} characters")
        elif not _speakable(spoken, tokenizer):
            errors.append(f"sounds_like {spoken!r} of {word.word!r} has nothing speakable "
                          "(letters, apostrophes or numbers)")
    if word.display_as is not None and not word.display_as.strip():
        errors.append(f"display_as of {word.word!r} must not be empty")
    elif word.display_as is not None and len(word.display_as) > MAX_WORD_CHARS:
        errors.append(f"display_as of {word.word!r} is longer than {MAX_WORD_CHARS} characters")
    return errors


def _spelling(text: str, tokenizer: Tokenizer) -> tuple[str, ...]:
    return tuple(tokenizer.piece(i) for i in tokenizer.encode(normalize_transcript(text)))


def build_custom_lm(bundle, corpora: list[str], words: list[CustomWord], out_dir: Path, *, order: int = 3,
                    progress: Callable[[float], None] | None = None) -> dict:
    """Build a custom LM for ``bundle`` into ``out_dir`` (built beside it, then swapped in).

    Args:
        bundle: the base :class:`~engine.bundle.ModelBundle` (its tokenizer and lexicon).
        corpora: texts, one sentence per line.
        words: custom words (each is also added once as a sentence, so it has LM mass).
        out_dir: the artifact folder; a build that fails leaves a previous one intact.
        order: n-gram order (>= 3).
        progress: called with the fraction done.

    Returns:
        A summary: ``order``, ``vocabulary``, ``ngrams``, ``custom_words``, ``oov_words_added``.

    Raises:
        ValueError: invalid words, an order below 3, or nothing to train on.
    """
    report = progress or (lambda _fraction: None)
    if order < 3:
        raise ValueError(f"order must be at least 3, got {order}")
    errors = [e for w in words for e in word_errors(w, bundle.tokenizer)]
    if errors:
        raise ValueError("; ".join(errors))
    vocabulary = base_vocabulary(bundle)
    report(0.05)
    # Multi-word custom words ("t mobile") become one LM token wherever the corpora say them.
    phrases = {normalize_transcript(w.word): word_key(w.word) for w in words if " " in normalize_transcript(w.word)}
    sentences = []
    for text in corpora:
        for line in _lines(text):
            padded = f" {line} "
            for phrase, key in phrases.items():
                padded = padded.replace(f" {phrase} ", f" {key} ")
            sentences.append(padded.strip())
    sentences += [word_key(w.word) for w in words]
    if not sentences:
        raise ValueError("nothing to train on: no corpus text with words and no custom words")
    report(0.2)
    display: dict[str, str] = {}
    spellings: dict[str, list[tuple[str, ...]]] = {}
    for w in words:
        key = word_key(w.word)
        display[key] = w.display_as.strip() if w.display_as else w.word.strip()
        forms = [_spelling(w.word, bundle.tokenizer)] + [_spelling(s, bundle.tokenizer) for s in w.sounds_like]
        if key in vocabulary:  # the base lexicon already spells it the tokenizer's way
            forms = forms[1:]
        for form in forms:
            if form not in spellings.setdefault(key, []):
                spellings[key].append(form)
    custom_keys = set(display)
    oov = sorted({t for s in sentences for t in s.split()} - vocabulary - custom_keys)
    for word in oov:
        spellings[word] = [_spelling(word, bundle.tokenizer)]
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        summary = build_arpa(sentences, tmp / LM_FILE, order=order)
        report(0.8)
        lines = [f"{word} {' '.join(form)}" for word, forms in sorted(spellings.items()) for form in forms if form]
        (tmp / LEXICON_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        (tmp / WORDS_FILE).write_text(json.dumps(display, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / PROMPT_FILE).write_text(prompt_text(words) + "\n", encoding="utf-8")
        spoken = {normalize_transcript(form): word_key(w.word) for w in words for form in (w.word, *w.sounds_like)
                  if normalize_transcript(form)}
        (tmp / SPOKEN_FILE).write_text(json.dumps(spoken, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        summary.update(custom_words=len(custom_keys), oov_words_added=len(oov), base_version=bundle.version)
        (tmp / SUMMARY_FILE).write_text(json.dumps({**summary, "build_id": uuid.uuid4().hex}, indent=1) + "\n")
        tmp.chmod(0o755)
        swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report(1.0)
    return summary


@dataclass(frozen=True)
class CustomLM:
    """A built custom LM folder, loaded (its KenLM model is read when a decoder is built).

    Attributes:
        path: the folder.
        display: LM word -> text shown for it.
        build_id: unique per build (decoders built from an older build at the same path are not reused).
    """

    path: Path
    display: dict
    build_id: str
    prompt: str = ""
    spoken: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> CustomLM:
        """Read a folder written by :func:`build_custom_lm`.

        Raises:
            ValueError: when files are missing or unreadable.
        """
        path = Path(path)
        try:
            display = json.loads((path / WORDS_FILE).read_text(encoding="utf-8"))
            build_id = json.loads((path / SUMMARY_FILE).read_text())["build_id"]
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path} is not a custom language model: {exc}") from exc
        for name in (LM_FILE, LEXICON_FILE):
            if not (path / name).is_file():
                raise ValueError(f"{path} is not a custom language model: {name} is missing")
        prompt_file = path / PROMPT_FILE  # builds before the Whisper pass took custom LMs have none
        prompt = prompt_file.read_text(encoding="utf-8").strip() if prompt_file.is_file() \
            else ", ".join(dict.fromkeys(display.values()))
        spoken_file = path / SPOKEN_FILE
        try:
            spoken = json.loads(spoken_file.read_text(encoding="utf-8")) if spoken_file.is_file() \
                else {key.replace("_", " "): key for key in display}
        except ValueError as exc:
            raise ValueError(f"{path} is not a custom language model: {exc}") from exc
        return cls(path, display, build_id, prompt, spoken)

    @property
    def lm_file(self) -> Path:
        """The ARPA n-gram model."""
        return self.path / LM_FILE

    @property
    def lexicon_file(self) -> Path:
        """The spellings of the words the base lexicon lacks (and the custom words' sounds_like)."""
        return self.path / LEXICON_FILE


def _log10_mix(a: float, b: float) -> float:
    """``log10(10**a + 10**b)`` without overflow."""
    m = max(a, b)
    if m == float("-inf"):
        return m
    return m + math.log10(10.0 ** (a - m) + 10.0 ** (b - m))


class MixtureLM(LM):
    """flashlight LM: linear interpolation of the base and the custom KenLM models (log10 scores).

    One instance per search: it maps its own :class:`LMState` tree to the pair of KenLM states.

    A word outside the custom vocabulary gets the custom model's ``<unk>`` mass shared out as the
    base model shares its own: ``P_custom(w | h) = P_custom(<unk> | h) P_base(w | h)``. (Giving
    each of the base lexicon's many words the whole ``<unk>`` probability would hand a small
    corpus's unseen-word mass to every word of the base vocabulary at once.)

    Args:
        base: the bundle's KenLM model (indexed by the base word dictionary).
        custom: the custom KenLM model (indexed by the extended dictionary).
        to_base: extended word index -> base word index (``<unk>`` for words the base lacks).
        in_custom: extended word index -> whether the custom model knows the word.
        weight: the custom model's share, in (0, 1].
    """

    def __init__(self, base: KenLM, custom: KenLM, to_base: list[int], in_custom: list[bool],
                 weight: float) -> None:
        LM.__init__(self)
        self._base, self._custom, self._to_base, self._in_custom = base, custom, to_base, in_custom
        self._log_base = math.log10(1.0 - weight) if weight < 1.0 else float("-inf")
        self._log_custom = math.log10(weight)
        self._states: dict = {}  # LMState -> (base KenLM state, custom KenLM state)
        self._scores: dict = {}  # (LMState, word) -> (next LMState, score): most calls repeat one

    def start(self, start_with_nothing: bool) -> LMState:
        """The sentence-start state (forgets the previous utterance's states)."""
        state = LMState()
        self._states = {state: (self._base.start(start_with_nothing), self._custom.start(start_with_nothing))}
        self._scores = {}
        return state

    def score(self, state: LMState, word: int) -> tuple[LMState, float]:
        """The state after ``word`` and the word's mixed log10 probability."""
        known = self._scores.get((state, word))
        if known is None:
            child = state.child(word)
            base_state, custom_state = self._states[state]
            base_next, base_score = self._base.score(base_state, self._to_base[word])
            custom_next, custom_score = self._custom.score(custom_state, word)
            if not self._in_custom[word]:
                custom_score += base_score
            self._states[child] = (base_next, custom_next)
            known = self._scores[state, word] = (child, _log10_mix(base_score + self._log_base,
                                                                    custom_score + self._log_custom))
        return known

    def finish(self, state: LMState) -> tuple[LMState, float]:
        """The end-of-sentence score."""
        base_state, custom_state = self._states[state]
        _, base_score = self._base.finish(base_state)
        _, custom_score = self._custom.finish(custom_state)
        return state, _log10_mix(base_score + self._log_base, custom_score + self._log_custom)


class CustomDecoder:
    """The bundle's beam search with a custom LM mixed in at one weight (built once, cached).

    Args:
        bundle: the base bundle (it must have a beam decoder).
        custom: the custom LM.
        weight: customization weight in (0, 1].
    """

    def __init__(self, bundle, custom: CustomLM, weight: float) -> None:
        beam = bundle.beam
        ctc = beam.ctc
        self.custom = custom
        self.weight = weight
        self._tokenizer: Tokenizer = bundle.tokenizer
        self._frame_seconds: float = bundle.frame_seconds
        self._blank = ctc.blank
        base_dict = ctc.word_dict
        words = Dictionary()
        for i in range(base_dict.index_size()):
            words.add_entry(base_dict.get_entry(i))
        base_unk = base_dict.get_index("<unk>")
        extra = load_words(str(custom.lexicon_file))
        for word in extra:
            if not words.contains(word):
                words.add_entry(word)
        words.set_default_index(base_unk)
        self._to_base = [i if i < base_dict.index_size() else base_unk for i in range(words.index_size())]
        self._entries = [words.get_entry(i) for i in range(words.index_size())]
        self._base_lm = ctc.lm
        known = set(_arpa_unigrams(custom.lm_file))
        self._in_custom = [entry in known for entry in self._entries]
        with native_stderr_silenced():
            self._custom_lm = KenLM(str(custom.lm_file), words)
        tokens = ctc.tokens_dict
        trie = Trie(tokens.index_size(), self._blank)
        lm = self._lm()
        start = lm.start(False)
        for lexicon in (load_words(str(beam.lexicon)), extra):
            for word, spellings in lexicon.items():
                index = words.get_index(word)
                _, score = lm.score(start, index)
                for spelling in spellings:
                    trie.insert([tokens.get_index(t) for t in spelling], index, score)
        trie.smear(SmearingMode.MAX)
        c = beam.config
        self._options = LexiconDecoderOptions(
            beam_size=c.beam_size, beam_size_token=tokens.index_size(), beam_threshold=c.beam_threshold,
            lm_weight=c.lm_weight, word_score=c.word_score, unk_score=float("-inf"), sil_score=0.0,
            log_add=False, criterion_type=CriterionType.CTC)
        self._trie = trie
        self._unk = base_unk

    def _lm(self) -> MixtureLM:
        return MixtureLM(self._base_lm, self._custom_lm, self._to_base, self._in_custom, self.weight)

    def online(self) -> CustomSearch:
        """A search fed chunk by chunk (its own LM state tree; the trie and models are shared)."""
        lm = self._lm()
        decoder = LexiconDecoder(self._options, self._trie, lm, self._blank, self._blank, self._unk, [], False)
        return CustomSearch(self, decoder, lm)

    def decode(self, log_probs: torch.Tensor, *, frame_offset: int = 0) -> list[Word]:
        """Best words of one whole utterance (``(U, V)`` log posteriors)."""
        search = self.online()
        search.step(log_probs)
        return search.end(log_probs, frame_offset=frame_offset)

    def words(self, path: list[int], word_ids: list[int], log_probs: torch.Tensor, frame_offset: int) -> list[Word]:
        """Words of a flashlight path: tokens grouped by the word each completes (not by ``▁``),
        so that a multi-word spelling ("i triple e") yields its one custom word."""
        ids, steps, ends = [], [], []
        for i, t in enumerate(path):
            if t != self._blank and (i == 0 or t != path[i - 1]):
                ids.append(t)
                steps.append(i)
            if i < len(word_ids) and word_ids[i] >= 0:
                ends.append((len(ids), word_ids[i]))
        tokens = path_tokens(ids, steps, log_probs, frame_offset)
        out, begin = [], 0
        for end, word in ends:
            group: list[Token] = tokens[begin:end]
            begin = end
            if not group:
                continue
            entry = self._entries[word]
            conf = math.exp(sum(math.log(max(t.prob, 1e-6)) for t in group) / len(group))
            shown = self.custom.display.get(entry, entry.replace("_", " "))
            out.append(Word(shown, group[0].frame * self._frame_seconds, (group[-1].frame + 1) * self._frame_seconds,
                            conf))
        return out


class CustomSearch:
    """One utterance's customised search, fed chunk by chunk; :meth:`end` gives words."""

    def __init__(self, owner: CustomDecoder, decoder: LexiconDecoder, lm: MixtureLM) -> None:
        self._owner = owner
        self._decoder = decoder
        self._lm = lm  # the decoder holds it only from C++: keep the Python object alive
        self._decoder.decode_begin()

    def step(self, log_probs: torch.Tensor) -> None:
        """Advance over ``(U, V)`` log posteriors."""
        if log_probs.shape[0]:
            emissions = log_probs.float().contiguous().cpu()
            self._decoder.decode_step(emissions.data_ptr(), emissions.shape[0], emissions.shape[1])

    def end(self, log_probs: torch.Tensor, *, frame_offset: int = 0) -> list[Word]:
        """Finish; return the best path's words.

        Args:
            log_probs: every ``(U, V)`` frame the search was fed.
            frame_offset: absolute index of the first frame.
        """
        self._decoder.decode_end()
        hyps = self._decoder.get_all_final_hypothesis()
        if not hyps or log_probs.shape[0] == 0:
            return []
        return self._owner.words(list(hyps[0].tokens), list(hyps[0].words), log_probs, frame_offset)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # bundle -> OrderedDict of CustomDecoder
_CACHE_LOCK = threading.Lock()


def custom_decoder(bundle, custom: CustomLM, weight: float) -> CustomDecoder:
    """The bundle's search with ``custom`` at ``weight``, from an LRU cache of built decoders.

    Raises:
        ValueError: a bundle without a beam decoder, or a weight outside (0, 1].
    """
    if bundle.beam is None:
        raise ValueError(f"{bundle.version} has no beam decoder to customise")
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"customization_weight must be in (0, 1] here, got {weight}")
    with _CACHE_LOCK:
        decoders = _CACHE.setdefault(bundle.beam, OrderedDict())
    return _cached(decoders, (*_identity(custom), float(weight)), lambda: CustomDecoder(bundle, custom, weight))


def _identity(custom: CustomLM) -> tuple[str, str]:
    """What tells one build of a custom LM from another (decoders built from an older build are not reused)."""
    return str(Path(custom.path).resolve()), custom.build_id


def _cached(cache: OrderedDict, key: tuple, build: Callable[[], object]) -> object:
    """``cache[key]``, built (outside the lock: building reads an LM) and kept among the
    :data:`DECODER_CACHE_SIZE` most recently used when missing."""
    with _CACHE_LOCK:
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
            return found
    built = build()
    with _CACHE_LOCK:
        cache[key] = built
        while len(cache) > DECODER_CACHE_SIZE:
            cache.popitem(last=False)
    return built


def apply_custom_words(words: list[Word], custom: CustomLM) -> list[Word]:
    """A decoder's words with the custom words put in: each run of words that says a custom word (its
    spelling or a ``sounds_like``, longest first) becomes that word as ``display_as`` shows it — what
    the CTC search does through its lexicon, for a final pass (Whisper's) that writes plain words."""
    out: list[Word] = []
    for start, n, key in _spoken_runs([normalize_transcript(w.word) for w in words], custom.spoken):
        run = words[start:start + n]
        out.append(run[0] if key is None else Word(custom.display.get(key, key), run[0].start, run[-1].end,
                                                   round(sum(w.confidence for w in run) / n, 3)))
    return out


def apply_custom_slots(words: list[Word], slots: Sequence[WordAlternatives], custom: CustomLM) -> tuple[WordAlternatives, ...]:
    """A final's word alternatives (:mod:`engine.confusion`) as :func:`apply_custom_words` shows its words.

    ``slots`` belong one for one to ``words``, the decoder's plain words. A run of words that says a custom
    word becomes one slot, the custom word as ``display_as`` shows it, with the least certain of the run's
    posteriors (all of its words must hold for the custom word to). In every other slot a competing word
    that is a custom word's spoken form is shown as that custom word (merged with its other forms).
    """
    if len(slots) != len(words):
        return tuple(slots)

    def shown(word: str) -> str:
        key = custom.spoken.get(normalize_transcript(word))
        return word if key is None else custom.display.get(key, key)

    out = []
    for start, n, key in _spoken_runs([normalize_transcript(w.word) for w in words], custom.spoken):
        run = slots[start:start + n]
        if key is not None and n > 1:
            held = min(dict(s.alternatives).get(w.word, 0.0) for s, w in zip(run, words[start:start + n]))
            out.append(WordAlternatives(run[0].start, run[-1].end, ((custom.display.get(key, key), held),)))
            continue
        merged: dict[str, float] = {}
        for word, p in run[0].alternatives:
            merged[shown(word)] = round(merged.get(shown(word), 0.0) + p, 4)
        out.append(WordAlternatives(run[0].start, run[0].end,
                                    tuple(sorted(merged.items(), key=lambda item: -item[1]))))
    return tuple(out)


def _spoken_runs(words: list[str], spoken: dict) -> list[tuple[int, int, str | None]]:
    """``words`` (normalised) cut into runs, left to right and longest first: ``(start, length, key)``
    for a run that says a custom word (``spoken`` maps its spoken forms to its LM token), and
    ``(start, 1, None)`` for a word that is no part of one."""
    runs, i = [], 0
    while i < len(words):
        for n in range(min(MAX_SPOKEN_WORDS, len(words) - i), 0, -1):
            key = spoken.get(" ".join(words[i:i + n]))
            if key is not None:
                runs.append((i, n, key))
                i += n
                break
        else:
            runs.append((i, 1, None))
            i += 1
    return runs


class SentenceScorer:
    """A custom LM's n-gram model scoring whole transcripts: the Whisper final pass's N-best rescoring.

    Words are read as :func:`engine.text.normalize_transcript` writes them, a custom word's spoken
    forms (its spelling, its ``sounds_like``) as its LM token; a word the custom LM never saw scores
    as its ``<unk>``, so in-domain spellings win between close hypotheses.
    """

    def __init__(self, custom: CustomLM) -> None:
        self._spoken = custom.spoken
        self._dictionary, self._lm = word_lm(custom.lm_file)
        self._lock = threading.Lock()

    def log_prob(self, text: str, end: bool = True) -> float:
        """Natural-log probability of ``text`` (normalised), sentence end included when ``end``
        (without it: the words as the start of a longer sentence, what shallow fusion scores while
        the decoder is still writing)."""
        words = normalize_transcript(text).split()
        # a custom word's spoken forms are its LM token ("i triple e" -> "ieee")
        words = [key or words[start] for start, _n, key in _spoken_runs(words, self._spoken)]
        with self._lock:
            state = self._lm.start(False)
            total = 0.0
            for word in words:
                state, score = self._lm.score(state, self._dictionary.get_index(word))
                total += score
            if end:
                _state, score = self._lm.finish(state)
                total += score
        return total * math.log(10)


def word_lm(arpa: Path) -> tuple[Dictionary, KenLM]:
    """A word n-gram model read from ARPA for scoring words in context: its dictionary (the 1-grams, with
    ``<unk>`` as the default index, so an unseen word scores as ``<unk>``) and the KenLM model over it."""
    dictionary = Dictionary()
    for word in _arpa_unigrams(arpa):
        dictionary.add_entry(word)
    if not dictionary.contains("<unk>"):
        dictionary.add_entry("<unk>")
    dictionary.set_default_index(dictionary.get_index("<unk>"))
    with native_stderr_silenced():  # KenLM prints a progress bar while it reads ARPA
        lm = KenLM(str(arpa), dictionary)
    return dictionary, lm


def _arpa_unigrams(path: Path) -> list[str]:
    """The words of an ARPA file's 1-gram section, in order (``<unk>`` and the sentence marks included)."""
    words, section = [], None
    with open(path, encoding="utf-8") as arpa:
        for line in arpa:
            line = line.strip()
            if line.startswith("\\"):
                if section == "\\1-grams:":
                    break
                section = line
            elif section == "\\1-grams:" and line:
                words.append(line.split("\t")[1])
    return words


_SCORERS: OrderedDict[tuple[str, str], SentenceScorer] = OrderedDict()


def sentence_scorer(custom: CustomLM) -> SentenceScorer:
    """The :class:`SentenceScorer` of ``custom``, from a small LRU cache (reading an LM takes a while)."""
    return _cached(_SCORERS, _identity(custom), lambda: SentenceScorer(custom))
