import pytest

from engine.scoring import per_file, score, scoring_form, strip_annotations, wer


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("You're now muted.", "you are now muted"),
        ("I can't, won't, don't; cannot", "i can not will not do not can not"),
        ("It's done and we'll see what's left. I'd go", "it is done and we will see what is left i would go"),
        ("Please leave your message. (simple tone sound plays)", "please leave your message"),
        ("(10 seconds of silence)", ""),
        ("[ascending tones] press 1", "press one"),
        ("the company's line", "the company's line"),
    ],
)
def test_scoring_form(raw: str, expected: str) -> None:
    assert scoring_form(raw) == expected


def test_strip_annotations_keeps_the_words_around_them() -> None:
    assert " ".join(strip_annotations('IAX (note: does not say "2")').split()) == "IAX"


def test_contractions_and_punctuation_are_not_errors() -> None:
    assert wer(["You are now muted."], ["you're now muted"]) == 0.0
    assert wer(["press 1"], ["Press one."]) == 0.0


def test_an_empty_reference_counts_the_hypothesis_as_insertions() -> None:
    s = score(["press one", "(7 seconds of silence)", ""], ["press one", "", "thank you"])
    assert (s.substitutions, s.deletions, s.insertions, s.reference_words) == (0, 0, 2, 2)
    assert s.wer == 1.0
    assert score(["(silence)"], [""]).wer == 0.0
    assert score(["(silence)"], ["hello there"]).wer == 2.0


def test_errors_are_counted_as_jiwer_aligns_them() -> None:
    s = score(["the cat sat", "on the mat"], ["the bat sat down", "on mat"])
    assert (s.substitutions, s.deletions, s.insertions, s.reference_words) == (1, 1, 1, 6)
    assert s.wer == pytest.approx(3 / 6)
    assert 0 < s.cer < 1


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        score(["a", "b"], ["a"])


def test_per_file_gives_each_pair_as_compared() -> None:
    rows = per_file(["You're in.", "(silence)"], ["you are out", "hi"])
    assert rows == [{"reference": "you are in", "hypothesis": "you are out", "errors": 1, "reference_words": 3},
                    {"reference": "", "hypothesis": "hi", "errors": 1, "reference_words": 0}]
    assert sum(r["errors"] for r in rows) == score(["You're in.", "(silence)"], ["you are out", "hi"]).errors
