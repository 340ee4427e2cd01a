import pytest

from engine.endpoint import EndpointConfig, should_close


def test_nothing_heard_never_closes() -> None:
    assert not should_close(EndpointConfig(), frames_done=1000, first_token_frame=None, last_token_frame=None,
                            frame_seconds=0.08)


@pytest.mark.parametrize(("frames_done", "closes"), [(14, False), (20, True)])
def test_trailing_silence_closes(frames_done: int, closes: bool) -> None:
    # last token at frame 9; 0.8 s = 10 frames of 80 ms after it
    config = EndpointConfig(silence_seconds=0.8)
    assert should_close(config, frames_done=frames_done, first_token_frame=2, last_token_frame=9,
                        frame_seconds=0.08) is closes


def test_long_utterance_is_cut() -> None:
    config = EndpointConfig(max_utterance_seconds=2.0)
    assert should_close(config, frames_done=30, first_token_frame=0, last_token_frame=29, frame_seconds=0.08)


@pytest.mark.parametrize("bad", [0.0, -1.0, 121.0])
def test_bad_silence_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="silence_seconds"):
        EndpointConfig(silence_seconds=bad)
