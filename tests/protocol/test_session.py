"""The Watson session state machine: legal sequences, illegal ones named by phase, limits."""

import pytest

from protocol.errors import IllegalState, InvalidParameter, TooLarge
from protocol.session import AudioEnded, AudioReceived, Phase, RecognizeSession, RequestStarted

START = '{"action": "start", "content-type": "audio/l16;rate=16000"}'


def test_two_requests_on_one_connection() -> None:
    s = RecognizeSession()
    [started] = s.receive_text(START)
    assert isinstance(started, RequestStarted) and s.phase is Phase.LISTENING
    assert s.receive_audio(b"\0" * 200) == [AudioReceived(b"\0" * 200)]
    assert s.receive_text('{"action": "stop"}') == [AudioEnded()]
    assert s.phase is Phase.STOPPING
    assert s.request_done() == '{"state": "listening"}' and s.phase is Phase.IDLE
    [again] = s.receive_text('{"action": "start", "interim_results": true}')
    assert again.options.content_type == "audio/l16;rate=16000" and again.options.interim_results
    s.receive_audio(b"\1" * 100)
    assert s.receive_audio(b"") == [AudioEnded()]  # an empty binary message also ends the request
    assert s.requests == 2


@pytest.mark.parametrize("steps,match", [
    (["audio"], "cannot take audio .* while the session is idle"),
    (["stop"], "cannot stop .* while the session is idle"),
    (["start", "start"], "while one is open"),
    (["start", "audio", "stop", "audio"], "while the session is stopping"),
    (["start", "audio", "stop", "start"], "cannot start a request while the session is stopping"),
])
def test_illegal_sequences_name_the_phase(steps: list[str], match: str) -> None:
    s = RecognizeSession()
    actions = {"start": lambda: s.receive_text(START), "stop": lambda: s.receive_text('{"action": "stop"}'),
               "audio": lambda: s.receive_audio(b"\0" * 128)}
    for step in steps[:-1]:
        actions[step]()
    with pytest.raises(IllegalState, match=match):
        actions[steps[-1]]()


def test_closed_session_takes_nothing() -> None:
    s = RecognizeSession()
    s.close()
    with pytest.raises(IllegalState, match="closed"):
        s.receive_text(START)


def test_limits() -> None:
    s = RecognizeSession(max_frame_bytes=1000, max_request_bytes=1500)
    s.receive_text(START)
    with pytest.raises(TooLarge, match="frame of 1001 bytes"):
        s.receive_audio(b"\0" * 1001)
    s.receive_audio(b"\0" * 1000)
    with pytest.raises(TooLarge, match="request's audio exceeds"):
        s.receive_audio(b"\0" * 600)


def test_a_request_needs_100_bytes() -> None:
    s = RecognizeSession()
    s.receive_text(START)
    s.receive_audio(b"\0" * 99)
    with pytest.raises(InvalidParameter, match="Stream was 99 bytes but needs to be at least 100 bytes."):
        s.receive_text('{"action": "stop"}')
