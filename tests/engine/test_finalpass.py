"""Choosing the final pass, the forced alignment of its words, and each pass through a stream."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from engine.audio import load_audio
from engine.finalpass import FinalPassKind, align_words, choose_final_pass, parse_kind
from engine.recognizer import Recognizer
from tests.conftest import FIXTURES

CUSTOM = SimpleNamespace(prompt="Press one for sales.")
PROMPT = (50361, 8437, 530)


def _bundle(*, whisper: bool, beam: bool, default: str = "ctc", fast: bool = False):
    text = SimpleNamespace(previous_text=lambda t: PROMPT if t else ())
    decoder = SimpleNamespace(text=text, unpadded=object() if fast else None) if whisper else None
    return SimpleNamespace(whisper=decoder, beam=object() if beam else None, default_final_pass=default)


@pytest.mark.parametrize(("whisper", "beam", "requested", "custom", "expected"), [
    (True, True, None, None, "whisper"),      # the version's default
    (True, True, "ctc", None, "ctc"),
    (True, True, "beam", None, "ctc"),        # the older name
    (True, True, "whisper", CUSTOM, "whisper"),  # kept: the custom LM prompts it and rescores its N-best
    (True, True, None, CUSTOM, "whisper"),
    (True, True, "ctc", CUSTOM, "ctc"),       # asked for: the custom LM is mixed into the search
    (False, True, "whisper", None, "ctc"),    # an older version has no Whisper decoder
    (False, False, "whisper", None, "greedy"),
    (True, False, "ctc", None, "greedy"),
    (True, False, "whisper", CUSTOM, "whisper"),  # no search to put the custom LM in
    (True, True, "greedy", CUSTOM, "greedy"),
])
def test_choice_rules(whisper, beam, requested, custom, expected) -> None:
    bundle = _bundle(whisper=whisper, beam=beam, default="whisper")
    assert choose_final_pass(bundle, requested, custom_lm=custom).kind is FinalPassKind(expected)


@pytest.mark.parametrize(("whisper", "fast", "expected"), [
    (True, True, "whisper-fast"),
    (True, False, "whisper"),  # a version without the adapter: the padded pass
    (False, False, "ctc"),     # an older version
])
def test_whisper_fast_needs_the_versions_adapter(whisper, fast, expected) -> None:
    bundle = _bundle(whisper=whisper, beam=True, default="whisper", fast=fast)
    chosen = choose_final_pass(bundle, "whisper-fast", custom_lm=CUSTOM, max_alternatives=2, word_alternatives=True)
    assert chosen.kind is FinalPassKind(expected)
    if expected == "whisper-fast":
        # the custom LM prompts and rescores it as it does the padded pass; a custom AM does not apply
        assert chosen.uses_whisper and not chosen.padded
        assert (chosen.whisper_prompt, chosen.custom_lm, chosen.alternatives, chosen.word_alternatives) == \
            (PROMPT, CUSTOM, 1, True)
        with_am = choose_final_pass(bundle, "whisper-fast", adapter=object())
        assert with_am.adapter is None and with_am.ignored_adapter


def test_whisper_applies_a_custom_lm_by_rescoring(monkeypatch) -> None:
    bundle = _bundle(whisper=True, beam=True, default="whisper")
    chosen = choose_final_pass(bundle, None, custom_lm=CUSTOM, customization_weight=0.5)
    assert (chosen.whisper_prompt, chosen.custom_lm, chosen.customization_weight) == (PROMPT, CUSTOM, 0.5)
    assert not chosen.ignored_custom_lm
    monkeypatch.setattr("engine.finalpass.WHISPER_PROMPT", False)
    assert choose_final_pass(bundle, None, custom_lm=CUSTOM).whisper_prompt == ()
    off = choose_final_pass(bundle, None, custom_lm=CUSTOM, customization_weight=0.0)
    assert (off.whisper_prompt, off.custom_lm, off.ignored_custom_lm) == ((), None, False)
    ctc = choose_final_pass(bundle, "ctc", custom_lm=CUSTOM)
    assert (ctc.kind, ctc.custom_lm, ctc.whisper_prompt) == (FinalPassKind.CTC, CUSTOM, ())


def test_shallow_fusion_is_asked_for_and_off_by_default() -> None:
    bundle = _bundle(whisper=True, beam=True, default="whisper")
    assert not choose_final_pass(bundle, None, custom_lm=CUSTOM).whisper_fusion
    assert choose_final_pass(bundle, None, custom_lm=CUSTOM, fusion=True).whisper_fusion
    assert not choose_final_pass(bundle, "ctc", custom_lm=CUSTOM, fusion=True).whisper_fusion


def test_weight_zero_drops_the_custom_lm() -> None:
    chosen = choose_final_pass(_bundle(whisper=True, beam=True, default="whisper"), None, custom_lm=CUSTOM,
                               customization_weight=0.0)
    assert chosen.kind is FinalPassKind.WHISPER and chosen.custom_lm is None


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="final_pass must be one of greedy, ctc, whisper, whisper-fast, got 'fast'"):
        parse_kind("fast")


def test_forced_alignment_places_words(tokenizer) -> None:
    text = "press one"
    ids = [tokenizer.encode(w) for w in text.split()]
    frames = torch.full((40, tokenizer.vocab_size), -10.0)
    frames[:, 0] = 0.0
    at = {5: ids[0], 25: ids[1]}
    for start, pieces in at.items():
        for j, p in enumerate(pieces):
            frames[start + 2 * j, :] = -10.0
            frames[start + 2 * j, p] = 0.0
    words = align_words(text, frames.log_softmax(-1), tokenizer, frame_seconds=0.02, frame_offset=100)
    assert [w.word for w in words] == ["press", "one"]
    assert words[0].start == pytest.approx((100 + 5) * 0.02) and words[1].start == pytest.approx((100 + 25) * 0.02)
    assert all(0 < w.confidence <= 1 for w in words) and words[0].end <= words[1].start


def test_alignment_without_enough_frames_spreads_the_words(tokenizer) -> None:
    words = align_words("press one for sales", torch.zeros(2, tokenizer.vocab_size).log_softmax(-1), tokenizer,
                        frame_seconds=0.02, frame_offset=0)
    assert [w.word for w in words] == ["press", "one", "for", "sales"] and all(w.confidence == 0.5 for w in words)


def test_alignment_counts_the_blanks_between_repeated_pieces(tokenizer) -> None:
    # "aaaa": each repeated piece needs a blank between: more frames than pieces, yet too few.
    # torchaudio raised "targets length is too long for CTC" here, and the stream's final failed.
    text = "lll mmm ooo"  # a 40-piece vocabulary spells these letter by letter: equal neighbours
    flat = [p for w in text.split() for p in tokenizer.encode(w)]
    repeats = sum(a == b for a, b in zip(flat, flat[1:]))
    assert repeats >= 2
    frames = len(flat) + 1  # enough for the pieces, not for the blanks between equal ones
    words = align_words(text, torch.zeros(frames, tokenizer.vocab_size).log_softmax(-1), tokenizer,
                        frame_seconds=0.02, frame_offset=0)
    assert [w.word for w in words] == text.split() and all(w.confidence == 0.5 for w in words)


@pytest.mark.timeout(300)
def test_whisper_final_pass_hears_real_words(whisper_bundle) -> None:
    audio = load_audio(FIXTURES / "hello.wav", 16000)
    recognizer = Recognizer(whisper_bundle)
    stream = recognizer.new_stream(final_pass=recognizer.final_pass("whisper"))
    finals = recognizer.run(stream, torch.cat([audio, torch.zeros(16000)]))
    assert " ".join(r.transcript for r in finals) == "read the data from the file"
    assert int(stream.state.offset) == 0  # the state restarted at the utterance boundary
    greedy = Recognizer(whisper_bundle).transcribe(audio, final_pass="greedy")
    assert greedy.transcript != "read the data from the file"  # the untrained CTC head alone cannot


@pytest.mark.timeout(300)
def test_final_executor_gives_the_same_words(whisper_bundle) -> None:
    from concurrent.futures import ThreadPoolExecutor
    audio = load_audio(FIXTURES / "hello.wav", 16000)
    with ThreadPoolExecutor(1) as pool:
        recognizer = Recognizer(whisper_bundle, final_executor=pool)
        stream = recognizer.new_stream(final_pass=recognizer.final_pass("whisper"))
        finals = recognizer.run(stream, audio)
    assert " ".join(r.transcript for r in finals) == "read the data from the file"


@pytest.mark.timeout(300)
def test_a_stream_longer_than_whisper_window(whisper_bundle) -> None:
    # 42 s: past Whisper's 30 s of positions. The state restarts at each utterance boundary, after
    # 4 s of silence, and utterances are cut before the positions run out.
    audio = load_audio(FIXTURES / "hello.wav", 16000)
    signal = torch.cat([torch.cat([audio, torch.zeros(24000)]) for _ in range(12)])
    recognizer = Recognizer(whisper_bundle)
    stream = recognizer.new_stream(chunk_frames=64, final_pass=recognizer.final_pass("greedy"))
    stream.accept_audio(signal)
    stream.end_audio()
    finals, most = [], 0
    while not stream.finished:
        finals += [r for r in recognizer.step([stream])[0] if r.final]
        most = max(most, int(stream.state.offset))
    assert stream.audio_seconds > 40 and finals
    assert most < whisper_bundle.model.config.dims.n_audio_ctx


def test_max_alternatives_asks_the_whisper_pass_for_its_next_best() -> None:
    bundle = _bundle(whisper=True, beam=True, default="whisper")
    assert choose_final_pass(bundle, None, max_alternatives=3).alternatives == 2
    assert choose_final_pass(bundle, None).alternatives == 0
    assert choose_final_pass(bundle, "ctc", max_alternatives=3).alternatives == 0  # the CTC search gives one


def test_word_alternatives_are_asked_of_the_whisper_pass_only() -> None:
    bundle = _bundle(whisper=True, beam=True, default="whisper")
    assert choose_final_pass(bundle, None, word_alternatives=True).word_alternatives
    assert not choose_final_pass(bundle, None).word_alternatives
    assert not choose_final_pass(bundle, "ctc", word_alternatives=True).word_alternatives


def test_the_whisper_beam_is_chosen_per_request() -> None:
    bundle = _bundle(whisper=True, beam=True, default="whisper")
    assert choose_final_pass(bundle, None, whisper_beam=4).whisper_beam == 4
    assert choose_final_pass(bundle, None).whisper_beam == 0
    assert choose_final_pass(bundle, "ctc", whisper_beam=4).whisper_beam == 0
