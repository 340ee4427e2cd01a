import pytest

from engine.text import normalize_transcript


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Please enter your password, followed by the pound key.", "please enter your password followed by the pound key"),
        ("Press 1 for sales; press 22 for support!", "press one for sales press twenty two for support"),
        ("[ascending tones]", ""),
        ("It's the 3rd time", "it's the third time"),
        ("rock-and-roll  &  'quoted'", "rock and roll and quoted"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_transcript(raw) == expected


def test_a_digit_string_too_long_for_a_number_is_read_digit_by_digit() -> None:
    """A decoder's repetition loop can write hundreds of digits ("1212...12"): num2words refuses such
    numbers (OverflowError), which failed the final and the custom LM's scoring of it."""
    assert normalize_transcript("press " + "12" * 200) == "press " + " ".join(["one two"] * 200)
    assert normalize_transcript("12" * 200 + "th") == " ".join(["one two"] * 200)
    assert normalize_transcript("1." + "5" * 30) == "one point " + " ".join(["five"] * 30)
    assert normalize_transcript("call 1234") == "call one thousand two hundred and thirty four"
