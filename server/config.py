"""Server configuration: the TOML file given by ``voxgate serve --config``.

::

    [server]
    max_sessions = 256            # concurrent recognition sessions; more get HTTP 503 at the handshake
    session_timeout_s = 30        # wall-clock seconds without any message from the client
    max_frame_bytes = 4194304     # largest WebSocket frame (4 MB; larger closes with 1009)
    max_request_bytes = 104857600 # most audio in one request (100 MB)
    release_check_s = 30          # how often to look for base versions registered since start (0: only when an
                                  # upgrade_model call asks); new sessions get them, open ones keep theirs

    [scheduler]
    max_batch = 64                # streams per model step
    max_wait_ms = 10              # deadline to gather a batch after its first stream
    workers = 1                   # model steps that may run at once, each on its own thread

    [recognition]
    chunk_ms = 160                # audio per model step and stream (multiple of 40)
    final_pass = "auto"           # "auto": the version's own; "whisper", "whisper-fast", "ctc" (word-LM beam search), "greedy"
    live_final_pass = ""          # per route, "" = final_pass: live streams (Watson WebSocket, both Transcribe streams) ...
    request_final_pass = ""       # ... sessionless POST /v1/recognize ...
    job_final_pass = ""           # ... and asynchronous jobs (/v1/recognitions)
    live_whisper_beam = 0         # beam of Whisper's decoder per route (0: the version's own, greedy) ...
    request_whisper_beam = 4      # ... 4 where accuracy matters more than a final's latency ...
    job_whisper_beam = 4          # ... (measured: README, Accuracy and speed)
    custom_lm_fusion = false      # Whisper pass: fuse a custom LM into the decoder's beam (for scripted audio)

    [customization]
    min_acoustic_minutes = 1.0    # the least valid audio a custom acoustic model trains on

    [s3]                          # where training text and batch media are read (s3:// URIs)
    endpoint_url = "http://127.0.0.1:9000"  # an S3-compatible server; omitted: AWS's own for the region
    region = "us-east-1"
    access_key_id = "..."         # omitted: boto3's own chain (AWS_ACCESS_KEY_ID, ~/.aws, ...)
    secret_access_key = "..."

    [[credentials]]               # one table per credential; no credentials = open, loopback only
    instance = "acme"             # the service instance (owner of custom models)
    api_key = "..."               # Authorization: Basic apikey:KEY / Bearer KEY / ?access_token=KEY
    access_key_id = "AKIA..."     # signs Transcribe presigned URLs ...
    secret_access_key = "..."     # ... with this secret

Unknown tables or keys are errors, so a typo never silently falls back to a default. The
environment overrides ``[s3]``, key by key: ``VOXGATE_S3_ENDPOINT_URL``, ``VOXGATE_S3_REGION``,
``VOXGATE_S3_ACCESS_KEY_ID``, ``VOXGATE_S3_SECRET_ACCESS_KEY`` (so a secret need not sit in the file).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.finalpass import parse_kind
from engine.scheduler import SchedulerConfig


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Credential:
    """One credential: an instance with an API key and/or an AWS-style access key pair."""

    instance: str
    api_key: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None


@dataclass(frozen=True)
class Limits:
    """Admission and size limits."""

    max_sessions: int = 256
    session_timeout_s: float = 30.0
    max_frame_bytes: int = 4 * 1024 * 1024
    max_request_bytes: int = 100 * 1024 * 1024
    release_check_s: float = 30.0

@dataclass(frozen=True)
class RecognitionConfig:
    """How live streams are recognised.

    Attributes:
        chunk_ms: audio per model step and stream (a multiple of 40 ms); longer chunks cost less
            per second of audio and delay interim results by as much.
        final_pass: what makes each final (:mod:`engine.finalpass`): ``auto`` (the model
            version's own: ``whisper`` for the Whisper-based versions, ``ctc`` for the older ones),
            ``whisper`` (Whisper's decoder over the utterance), ``whisper-fast`` (the same over the
            utterance encoded without Whisper's padding, through the version's adapter), ``ctc`` (beam search with the
            model's word LM; ``beam`` is accepted as its older name) or ``greedy`` (the interim
            hypothesis becomes the final: cheapest, least accurate). A version that lacks the
            asked pass uses the next best it has.
        live_final_pass, request_final_pass, job_final_pass: the same choice for one kind of
            route (:data:`ROUTES`); empty: ``final_pass``.
        live_whisper_beam, request_whisper_beam, job_whisper_beam: the beam of Whisper's decoder in
            the ``whisper`` pass per kind of route (0: the version's own, greedy on v2026-12-01). A beam
            of 4 was better on every set measured (Allison test 6.6 -> 6.3%, HTS slt 17.1 -> 14.8%, flite
            awb 23.2 -> 20.7%) for ~40% more decoding time: the default for sessionless requests and
            jobs, where accuracy matters more than a final's latency; live streams stay greedy.
        custom_lm_fusion: the ``whisper`` pass fuses a request's custom LM into the decoder's beam search
            (shallow fusion) instead of rescoring the beam's finished hypotheses. Off by default: it helps
            where the audio says the corpus's own sentences (scripted prompts) and hurts on sentences the
            corpus lacks (README "Custom language models").
    """

    chunk_ms: int = 160
    final_pass: str = "auto"
    live_final_pass: str = ""
    request_final_pass: str = ""
    job_final_pass: str = ""
    live_whisper_beam: int = 0
    request_whisper_beam: int = 4
    job_whisper_beam: int = 4
    custom_lm_fusion: bool = False

    def __post_init__(self) -> None:
        for route in ROUTES:
            beam = getattr(self, f"{route}_whisper_beam")
            if not 0 <= beam <= 16:
                raise ValueError(f"{route}_whisper_beam must be between 0 and 16, got {beam}")
        if self.chunk_ms % 40 or not 40 <= self.chunk_ms <= 2000:
            raise ValueError(f"chunk_ms must be a multiple of 40 between 40 and 2000, got {self.chunk_ms}")
        for key in ("final_pass", *(f"{route}_final_pass" for route in ROUTES)):
            value = getattr(self, key)
            if value not in ("auto", "") or (key == "final_pass" and value == ""):
                try:
                    parse_kind(value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None

    def whisper_beam(self, route: str) -> int:
        """The Whisper decoder's beam for ``route`` (0: the version's own)."""
        if route not in ROUTES:
            raise ValueError(f"unknown route kind {route!r}, expected one of {', '.join(ROUTES)}")
        return getattr(self, f"{route}_whisper_beam")

    def requested_final_pass(self, route: str) -> str | None:
        """The final pass configured for ``route`` (one of :data:`ROUTES`), None for ``auto``."""
        if route not in ROUTES:
            raise ValueError(f"unknown route kind {route!r}, expected one of {', '.join(ROUTES)}")
        value = getattr(self, f"{route}_final_pass") or self.final_pass
        return None if value == "auto" else value


#: The kinds of route a final pass can be configured for: live streams (the Watson WebSocket,
#: Transcribe's WebSocket and HTTP/2 streams), sessionless ``POST /v1/recognize`` and asynchronous jobs.
ROUTES = ("live", "request", "job")


@dataclass(frozen=True)
class CustomizationConfig:
    """Custom model training.

    Attributes:
        min_acoustic_minutes: the least valid audio a custom acoustic model trains on (Watson asks
            for 10 minutes; a few minutes of one speaker already adapt well).
    """

    min_acoustic_minutes: float = 1.0

    def __post_init__(self) -> None:
        if self.min_acoustic_minutes < 0:
            raise ValueError(f"min_acoustic_minutes must not be negative, got {self.min_acoustic_minutes}")


@dataclass(frozen=True)
class S3Config:
    """The S3-compatible object store that ``s3://`` URIs name (training text, batch media and results).

    Attributes:
        endpoint_url: the store's URL (``http://host:port``); None: AWS's own endpoint for ``region``.
        region: the region requests are signed for.
        access_key_id, secret_access_key: the key pair, both or neither; neither: boto3's own
            credential chain (``AWS_ACCESS_KEY_ID`` ..., ``~/.aws``, an instance role).
    """

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def __post_init__(self) -> None:
        if self.endpoint_url is not None and not self.endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint_url must start with http:// or https://, got {self.endpoint_url!r}")
        if not self.region:
            raise ValueError("region must not be empty")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError("needs both access_key_id and secret_access_key, or neither")


#: Environment variables that override ``[s3]`` keys.
S3_ENVIRONMENT = {"endpoint_url": "VOXGATE_S3_ENDPOINT_URL", "region": "VOXGATE_S3_REGION",
                  "access_key_id": "VOXGATE_S3_ACCESS_KEY_ID", "secret_access_key": "VOXGATE_S3_SECRET_ACCESS_KEY"}


@dataclass(frozen=True)
class Config:
    """Everything ``voxgate serve`` reads from its config file."""

    limits: Limits = field(default_factory=Limits)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    credentials: tuple[Credential, ...] = ()
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    customization: CustomizationConfig = field(default_factory=CustomizationConfig)
    s3: S3Config = field(default_factory=S3Config)


def _table(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(known)}")
    for key, value in values.items():
        expected = {"int": int, "float": (int, float), "str": str, "str | None": str,
                    "bool": bool}.get(str(known[key].type))
        if expected and (not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool)):
            raise ConfigError(f"{where}.{key} must be {known[key].type}, got {value!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _s3(values: Any, where: str, environ: Mapping[str, str]) -> S3Config:
    """The ``[s3]`` table with the environment's overrides (:data:`S3_ENVIRONMENT`) laid over it."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table")
    overrides = {key: environ[name] for key, name in S3_ENVIRONMENT.items() if environ.get(name)}
    return _table(S3Config, {**values, **overrides}, where)


def parse_config(data: dict[str, Any], source: str = "config", environ: Mapping[str, str] | None = None) -> Config:
    """Build a :class:`Config` from parsed TOML.

    Args:
        data: the parsed file.
        source: what to call it in errors.
        environ: the environment for ``[s3]``'s overrides (None: ``os.environ``).

    Raises:
        ConfigError: unknown tables or keys, wrong types, duplicate or incomplete credentials.
    """
    unknown = sorted(set(data) - {"server", "scheduler", "recognition", "customization", "s3", "credentials"})
    if unknown:
        raise ConfigError(f"{source}: unknown table(s) {', '.join(unknown)}; "
                          "expected server, scheduler, recognition, customization, s3, credentials")
    limits = _table(Limits, data.get("server", {}), f"{source}: [server]")
    if limits.max_sessions < 1 or limits.session_timeout_s <= 0 or limits.max_frame_bytes < 1 \
            or limits.max_request_bytes < 1 or limits.release_check_s < 0:
        raise ConfigError(f"{source}: [server] limits must be positive")
    scheduler = _table(SchedulerConfig, data.get("scheduler", {}), f"{source}: [scheduler]")
    recognition = _table(RecognitionConfig, data.get("recognition", {}), f"{source}: [recognition]")
    customization = _table(CustomizationConfig, data.get("customization", {}), f"{source}: [customization]")
    s3 = _s3(data.get("s3", {}), f"{source}: [s3]", os.environ if environ is None else environ)
    raw = data.get("credentials", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: credentials must be an array of tables ([[credentials]])")
    credentials = tuple(_table(Credential, c, f"{source}: [[credentials]] #{i + 1}") for i, c in enumerate(raw))
    seen: set[str] = set()
    for i, c in enumerate(credentials, 1):
        if not c.instance:
            raise ConfigError(f"{source}: [[credentials]] #{i} needs an instance")
        if not c.api_key and not c.access_key_id:
            raise ConfigError(f"{source}: [[credentials]] #{i} ({c.instance}) needs api_key or access_key_id")
        if bool(c.access_key_id) != bool(c.secret_access_key):
            raise ConfigError(f"{source}: [[credentials]] #{i} ({c.instance}) needs both access_key_id and "
                              "secret_access_key")
        for secret in (c.api_key, c.access_key_id):
            if secret and secret in seen:
                raise ConfigError(f"{source}: [[credentials]] #{i} ({c.instance}) repeats a key of another credential")
            if secret:
                seen.add(secret)
    return Config(limits, scheduler, credentials, recognition, customization, s3)


def load_config(path: Path | None) -> Config:
    """Read the config file (None: the defaults, with no credentials), then the environment's ``[s3]`` overrides.

    Raises:
        ConfigError: unreadable file, bad TOML, or bad content.
    """
    if path is None:
        return parse_config({}, "environment")
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, str(path))
