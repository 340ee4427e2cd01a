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
