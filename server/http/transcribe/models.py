"""Which models a Transcribe stream uses: the newest base model for its rate, or its CLM's.

``language-model-name`` (WebSocket query) or ``x-amzn-transcribe-language-model-name`` /
``x-amzn-language-model-name`` (HTTP headers) name a CLM of the caller
(:class:`~server.runtime.transcribe_models.TranscribeModels`); it is resolved through the shared
:class:`~server.runtime.resolution.Resolver` as a live request, so an expired CLM falls back to the
newest base version with a warning. Transcribe's events have no place for warnings: they go to the
client in the response's :data:`WARNINGS_HEADER` (the WebSocket handshake's or the HTTP response's).
"""

from __future__ import annotations

from aiohttp import web

from protocol.errors import InvalidParameter
from protocol.transcribe import StreamParams
from server.http.keys import MODELS, RESOLVER, TRANSCRIBE_MODELS
from server.runtime.resolution import Resolved

#: The response header that carries a stream's warnings (voxgate's; `` | `` between two).
WARNINGS_HEADER = "x-voxgate-warnings"


async def resolve_stream(app: web.Application, owner: str, params: StreamParams) -> Resolved:
    """The models of a stream.

    Raises:
        NotFoundError: no CLM of that name for the caller, or no model for the language and rate.
        InvalidParameter: a CLM not trained yet, or on a base model whose rate is above the audio's.
    """
    if not params.language_model_name:
        return Resolved(app[MODELS].for_rate(params.sample_rate_hz, params.language_code))
    custom_id = await app[TRANSCRIBE_MODELS].model_id(owner, params.language_model_name)
    resolved = await app[RESOLVER](owner, {"language_customization_id": custom_id})
    if resolved.model.sample_rate_hz > params.sample_rate_hz:
        raise InvalidParameter(f"The language model {params.language_model_name} is built on "
                               f"{resolved.model.bundle.name} for audio of {resolved.model.sample_rate_hz} Hz and up; "
                               f"the stream's sample-rate is {params.sample_rate_hz}")
    return resolved


def warning_headers(resolved: Resolved) -> dict[str, str]:
    """The response headers that tell the client the resolution's warnings (none: no header)."""
    if not resolved.warnings:
        return {}
    text = " | ".join(resolved.warnings)
    return {WARNINGS_HEADER: text.encode("latin-1", "replace").decode("latin-1").replace("\n", " ")}
