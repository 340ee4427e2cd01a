"""Custom language models: corpus analysis, word validation, atomic builds, and decoding with them.

The decoding tests use the shipped broadband model on ``tests/fixtures/vorlaxa.wav`` (espeak-ng
en-us saying "please call vorlaxa support today"; "vorlaxa" is an invented word, outside the
base vocabulary).
"""

from pathlib import Path

import pytest
import torch

import engine.customlm as customlm
from engine.audio import load_audio
from engine.bundle import load_bundle
from engine.catalog import default_models_dir
from engine.customlm import (
    CustomLM,
    CustomWord,
    analyze_corpus,
    base_vocabulary,
    build_custom_lm,
    word_errors,
)
from engine.recognizer import Recognizer
from engine.searchpool import SearchPool
from tests.conftest import FIXTURES
from tests.engine.streaming import stream_finals

BROADBAND = default_models_dir() / "en-US_BroadbandModel" / "en-US_BroadbandModel.v2026-11-01"
CORPUS = "Please call Vorlaxa support today.\nCall Vorlaxa now!\nVorlaxa support is open 24 hours.\n"


@pytest.fixture(scope="module")
def bundle():
    """The shipped broadband model with its beam decoder."""
    return load_bundle(BROADBAND)


@pytest.fixture(scope="module")
def audio() -> torch.Tensor:
    """The invented-word sentence at 16 kHz."""
    return load_audio(FIXTURES / "vorlaxa.wav", 16000)


def built(bundle, tmp_path: Path, words: list[CustomWord], corpora: tuple[str, ...] = (CORPUS,)) -> CustomLM:
    build_custom_lm(bundle, list(corpora), words, tmp_path / "clm")
    return CustomLM.load(tmp_path / "clm")


def test_analysis_counts_words_and_oov() -> None:
    vocabulary = frozenset({"press", "for", "one", "call", "then"})
    analysis = analyze_corpus("Press 1 for Vorlaxa.\n\n[beep] Call vorlaxa, then press 2!\n", vocabulary)
    assert analysis.total_words == 9  # press one for vorlaxa / call vorlaxa then press two
    assert analysis.oov_words == {"vorlaxa": 2, "two": 1}


def test_analysis_of_text_without_words_is_refused() -> None:
    with pytest.raises(ValueError, match="no words"):
        analyze_corpus("  \n!!! ...\n[noise]\n", frozenset())


def test_word_errors(bundle) -> None:
    tok = bundle.tokenizer
    assert word_errors(CustomWord("IEEE", ("I triple E",), "IEEE"), tok) == []
    assert word_errors(CustomWord("  "), tok) == ["word must not be empty"]
    assert any("at most 5" in e for e in word_errors(CustomWord("x", tuple("abcdef")), tok))
    assert any("longer than 40" in e for e in word_errors(CustomWord("x", ("a" * 41,)), tok))
    assert any("nothing speakable" in e for e in word_errors(CustomWord("x", ("!!!",)), tok))
    assert any("no letters" in e for e in word_errors(CustomWord("???"), tok))
    assert any("display_as" in e for e in word_errors(CustomWord("x", display_as=" "), tok))
    # issue 13: a word with spaces, and NUL or other control characters anywhere, were accepted
    assert any("contains spaces" in e for e in word_errors(CustomWord("call center"), tok))
    assert word_errors(CustomWord("call-center", ("call center",)), tok) == []
    for bad in (CustomWord("x", ("a\x00b",)), CustomWord("x\ty"), CustomWord("x", display_as="X\nY")):
        [error] = word_errors(bad, tok)
        assert "control characters" in error


def test_build_summary_and_files(bundle, tmp_path: Path) -> None:
    progress: list[float] = []
    summary = build_custom_lm(bundle, [CORPUS], [CustomWord("Zyxtrel"), CustomWord("T-Mobile", ("tee mobile",))],
                              tmp_path / "clm", progress=progress.append)
    assert summary["order"] == 3 and len(summary["ngrams"]) == 3
    assert summary["custom_words"] == 2 and summary["oov_words_added"] >= 1  # vorlaxa
    assert progress[-1] == 1.0 and progress == sorted(progress)
    lexicon = (tmp_path / "clm" / "lexicon.txt").read_text().splitlines()
    assert any(line.startswith("zyxtrel ") for line in lexicon)  # never in a corpus, still spelled
    assert sum(line.startswith("t_mobile ") for line in lexicon) == 2  # its own spelling and its sounds_like
    assert CustomLM.load(tmp_path / "clm").display["t_mobile"] == "T-Mobile"
    assert "zyxtrel" in (tmp_path / "clm" / "lm.arpa").read_text()  # has LM mass without a corpus mention
    assert "vorlaxa" not in base_vocabulary(bundle)


def test_nothing_to_train_on_is_refused(bundle, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to train on"):
        build_custom_lm(bundle, ["...\n"], [], tmp_path / "clm")
    with pytest.raises(ValueError, match="at most 5"):
        build_custom_lm(bundle, [CORPUS], [CustomWord("x", tuple("abcdef"))], tmp_path / "clm")


def test_failed_build_leaves_the_previous_model(bundle, tmp_path: Path, monkeypatch) -> None:
    first = built(bundle, tmp_path, [])

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(customlm, "build_arpa", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build_custom_lm(bundle, [CORPUS], [CustomWord("Zyxtrel")], tmp_path / "clm")
    assert CustomLM.load(tmp_path / "clm") == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clm"]  # no temporary folder left behind
    monkeypatch.undo()
    assert built(bundle, tmp_path, []).build_id != first.build_id  # a rebuild replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clm"]


def test_custom_word_outside_the_base_vocabulary_is_recognised(bundle, audio, tmp_path: Path) -> None:
    recognizer = Recognizer(bundle)
    base = recognizer.transcribe(audio)
    assert "vorlaxa" not in base.transcript
    custom = built(bundle, tmp_path, [CustomWord("Vorlaxa")])
    words = recognizer.transcribe(audio, custom_lm=custom, customization_weight=0.3).words
    assert [w.word for w in words][:4] == ["please", "call", "Vorlaxa", "support"]
    assert all(0 < w.confidence <= 1 and w.start < w.end for w in words)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))
    assert words[-1].end <= audio.numel() / 16000 + 0.1


def test_display_as_changes_the_shown_word(bundle, audio, tmp_path: Path) -> None:
    custom = built(bundle, tmp_path, [CustomWord("vorlaxa", display_as="VorLaxa(TM)")])
    assert "VorLaxa(TM)" in Recognizer(bundle).transcribe(audio, custom_lm=custom).transcript


def test_sounds_like_spelling_maps_to_the_word(bundle, audio, tmp_path: Path) -> None:
    custom = built(bundle, tmp_path, [CustomWord("VX-9", ("vorlaxa",))], corpora=("please call vx nine today\n",))
    shown = [w.word for w in Recognizer(bundle).transcribe(audio, custom_lm=custom, customization_weight=0.5).words]
    assert shown[:4] == ["please", "call", "VX-9", "support"]


def test_a_multi_word_sounds_like_is_one_word(bundle, audio, tmp_path: Path) -> None:
    custom = built(bundle, tmp_path, [CustomWord("VLX", ("vorlaxa support",), display_as="Vorlaxa Support")],
                   corpora=("please call vlx today\n",))
    words = Recognizer(bundle).transcribe(audio, custom_lm=custom, customization_weight=0.5).words
    assert [w.word for w in words][:3] == ["please", "call", "Vorlaxa Support"]
    assert words[2].end - words[2].start > 0.8  # it spans both spoken words
    assert words[1].end <= words[2].start and words[2].end <= words[3].start


def test_weight_zero_is_the_base_search(bundle, audio, tmp_path: Path) -> None:
    recognizer = Recognizer(bundle)
    custom = built(bundle, tmp_path, [CustomWord("Vorlaxa")])
    assert (recognizer.transcribe(audio, custom_lm=custom, customization_weight=0.0).words
            == recognizer.transcribe(audio).words)
    with pytest.raises(ValueError, match="between 0 and 1"):
        recognizer.final_pass("ctc", custom_lm=custom, customization_weight=1.5)


def test_built_decoders_are_cached(bundle, tmp_path: Path) -> None:
    custom = built(bundle, tmp_path, [CustomWord("Vorlaxa")])
    assert customlm.custom_decoder(bundle, custom, 0.3) is customlm.custom_decoder(bundle, custom, 0.3)
    assert customlm.custom_decoder(bundle, custom, 0.3) is not customlm.custom_decoder(bundle, custom, 0.5)


def finals(recognizer: Recognizer, audio: torch.Tensor, custom: CustomLM) -> list:
    stream = recognizer.new_stream(online=True, final_pass=recognizer.final_pass("ctc", custom_lm=custom,
                                                                              customization_weight=0.3))
    out = stream_finals(recognizer, stream, audio)
    if recognizer.search_pool is not None:
        out = [recognizer.rescored(r, r.rescore.result(timeout=120)) if r.rescore is not None else r for r in out]
    return [w for r in out for w in r.words]


@pytest.mark.timeout(300)
def test_pool_search_equals_in_process_search(bundle, audio, tmp_path: Path) -> None:
    custom = built(bundle, tmp_path, [CustomWord("Vorlaxa")])
    local = finals(Recognizer(bundle), audio, custom)
    assert "Vorlaxa" in [w.word for w in local]
    assert [w.word for w in local] == [w.word for w in Recognizer(bundle).transcribe(audio, custom_lm=custom).words]
    pool = SearchPool(BROADBAND)
    try:
        pool.wait_ready()
        remote = finals(Recognizer(bundle, search_pool=pool), audio, custom)
    finally:
        pool.close()
    assert remote == local


def test_sentence_scorer_prefers_the_domains_sentences_and_the_prompt_holds_its_words(bundle, tmp_path: Path) -> None:
    from engine.customlm import prompt_text, sentence_scorer

    build_custom_lm(bundle, [CORPUS], [CustomWord("Zyxtrel")], tmp_path / "clm")
    custom = CustomLM.load(tmp_path / "clm")
    scorer = sentence_scorer(custom)
    assert sentence_scorer(custom) is scorer  # cached
    line = CORPUS.splitlines()[0]
    from engine.text import normalize_transcript
    scrambled = " ".join(reversed(normalize_transcript(line).split()))
    assert scorer.log_prob(line) > scorer.log_prob(scrambled) > scorer.log_prob("quokka " * len(line.split()))
    # without the sentence end: the words as the start of a longer sentence (what shallow fusion scores)
    assert scorer.log_prob("", end=False) == 0.0
    assert scorer.log_prob(line, end=False) != scorer.log_prob(line)
    assert scorer.log_prob(line, end=False) > scorer.log_prob(scrambled, end=False)
    assert custom.prompt == "Zyxtrel"  # the glossary of the custom words; the corpora act through the rescoring
    assert prompt_text([CustomWord("IEEE", ("I triple E",), "IEEE"), CustomWord("T-Mobile")]) == "IEEE, T-Mobile"
    assert len(prompt_text([CustomWord(f"Word{i}") for i in range(100)], budget=80)) <= 80


def test_custom_words_are_put_into_plain_words_with_their_display_form(bundle, tmp_path: Path) -> None:
    from engine.customlm import apply_custom_words, sentence_scorer
    from engine.decoding import Word

    build_custom_lm(bundle, [CORPUS], [CustomWord("IEEE", ("I triple E",), "IEEE"),
                                       CustomWord("T-Mobile", ("tee mobile",))], tmp_path / "clm")
    custom = CustomLM.load(tmp_path / "clm")
    said = [Word(w, i * 0.5, i * 0.5 + 0.4, 0.9 - 0.1 * i) for i, w in enumerate("call i triple e on t mobile".split())]
    got = apply_custom_words(said, custom)
    assert [(w.word, w.start, w.end) for w in got] == [("call", 0.0, 0.4), ("IEEE", 0.5, 1.9), ("on", 2.0, 2.4),
                                                       ("T-Mobile", 2.5, 3.4)]
    assert got[1].confidence == round((0.8 + 0.7 + 0.6) / 3, 3)
    scorer = sentence_scorer(custom)
    assert scorer.log_prob("call i triple e") == scorer.log_prob("call ieee")


def test_word_alternatives_show_custom_words_as_the_words_do(bundle, tmp_path: Path) -> None:
    from engine.confusion import WordAlternatives
    from engine.customlm import apply_custom_slots, apply_custom_words
    from engine.decoding import Word

    build_custom_lm(bundle, [CORPUS], [CustomWord("IEEE", ("I triple E",), "IEEE"),
                                       CustomWord("T-Mobile", ("tee mobile", "tmobile"))], tmp_path / "clm")
    custom = CustomLM.load(tmp_path / "clm")
    said = [Word(w, i * 0.5, i * 0.5 + 0.4, 0.9) for i, w in enumerate("call i triple e on tmobile".split())]
    slots = (WordAlternatives(0.0, 0.4, (("call", 0.9), ("tall", 0.1))),
             WordAlternatives(0.5, 0.9, (("i", 1.0),)),
             WordAlternatives(1.0, 1.4, (("triple", 0.7), ("triply", 0.3))),
             WordAlternatives(1.5, 1.9, (("e", 0.8), ("b", 0.2))),
             WordAlternatives(2.0, 2.4, (("on", 0.6), ("tmobile", 0.25), ("an", 0.15))),
             WordAlternatives(2.5, 2.9, (("tmobile", 0.5), ("mobile", 0.3), ("t-mobile", 0.2))))
    got = apply_custom_slots(said, slots, custom)
    words = apply_custom_words(said, custom)
    # one slot per shown word, over the same time span
    assert [(s.start, s.end) for s in got] == [(w.start, w.end) for w in words]
    assert got[0] == slots[0]
    # the run that says IEEE is one slot, as certain as its least certain word
    assert got[1].alternatives == (("IEEE", 0.7),)
    # a competing spoken form shows as the custom word; its forms are merged and ranked again
    assert got[2].alternatives == (("on", 0.6), ("T-Mobile", 0.25), ("an", 0.15))
    assert got[3].alternatives == (("T-Mobile", 0.7), ("mobile", 0.3))
    assert words[3].word == "T-Mobile"
    # slots that do not match the words are left as they are
    assert apply_custom_slots(said[:2], slots, custom) == slots
