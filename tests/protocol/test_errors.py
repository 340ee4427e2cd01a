import pytest

from protocol.errors import (
    AuthenticationError, CloseCode, IllegalState, LimitExceeded, MalformedMessage, NotFoundError, ShuttingDown,
    TooLarge, close_code_for, http_status_for, public_message, watson_error_body,
)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (MalformedMessage("x"), CloseCode.PROTOCOL_ERROR, 400),
        (IllegalState("x"), CloseCode.PROTOCOL_ERROR, 400),
        (AuthenticationError("x"), CloseCode.POLICY_VIOLATION, 401),
        (NotFoundError("x"), CloseCode.POLICY_VIOLATION, 404),
        (TooLarge("x"), CloseCode.MESSAGE_TOO_BIG, 413),
        (LimitExceeded("x"), CloseCode.TRY_AGAIN_LATER, 503),
        (ShuttingDown("x"), CloseCode.SERVICE_RESTART, 503),
        (KeyError("secret internals"), CloseCode.INTERNAL_ERROR, 500),
    ],
)
def test_one_mapping_for_codes_and_statuses(error: Exception, code: CloseCode, status: int) -> None:
    assert close_code_for(error) == code
    assert http_status_for(error) == status


def test_unexpected_errors_hide_their_internals() -> None:
    assert "secret" not in public_message(KeyError("secret internals"))
    assert watson_error_body(NotFoundError("Model x not found")) == {
        "code": 404, "code_description": "Not Found", "error": "Model x not found"}
