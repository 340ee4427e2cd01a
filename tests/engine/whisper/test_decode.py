"""Whisper decoding helpers: repetition loops are detected and never reach a final."""

from __future__ import annotations

from engine.whisper.decode import MAX_TOKENS, collapse_repeats, looping


def test_a_loop_is_detected_by_the_token_budget_or_the_compression_ratio() -> None:
    assert looping(list(range(MAX_TOKENS)), "x")
    assert looping([1] * 20, " ".join(["press one for sales"] * 8))
    assert not looping([1] * 20, "please enter your mailbox number followed by the pound key")
    assert not looping([1, 1, 1], "one one one")  # short texts are never called loops


def test_a_repetition_that_fits_the_audio_is_speech_not_a_loop() -> None:
    said = " ".join(["read the data from the file"] * 4)  # 111 characters, compresses 3x
    assert looping([1] * 24, said)  # without the audio's length: the compression ratio alone
    assert not looping([1] * 24, said, seconds=8.0)  # 14 characters a second: a caller saying it four times
    assert looping([1] * 24, said, seconds=3.0)  # 37 a second: faster than anyone reads
    assert looping(list(range(MAX_TOKENS)), "x", seconds=30.0)  # the token budget is a loop whatever the length


def test_collapse_repeats_keeps_one_copy_of_each_run_of_three_or_more() -> None:
    assert collapse_repeats([1, 2, 3, 4, 5, 4, 5, 4, 5, 4, 5, 6]) == [1, 2, 3, 4, 5, 6]
    assert collapse_repeats([7, 7, 7, 7, 8]) == [7, 8]
    assert collapse_repeats([1, 2, 1, 2, 3]) == [1, 2, 1, 2, 3]  # two copies may be meant


def test_a_beam_whose_best_hypothesis_is_silence_does_not_fail() -> None:
    """An utterance of silence can end the beam with a hypothesis of no words (just the end of text):
    scoring it divided by zero (found by ``voxgate eval`` with a beam of 4 on HTS audio)."""
    from types import SimpleNamespace

    from engine.whisper.decode import DecodeOptions, UtteranceDecoder

    decoder = UtteranceDecoder.__new__(UtteranceDecoder)
    decoder.options = DecodeOptions(beam_size=4)
    decoder._beam_pool = lambda audio, beam, prompt: [([], -0.5), ([5, 6], -3.0)]
    decoder.text = SimpleNamespace()
    assert decoder._beam(None, 4, []) == []
