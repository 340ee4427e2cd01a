"""The typed keys under which :mod:`server.app` puts each service on the application, for the handlers."""

from __future__ import annotations

from aiohttp import web

from server.catalog import Catalog
from server.config import Config
from server.runtime.auth import Authenticator
from server.runtime.jobs import JobRunner
from server.runtime.metrics import Metrics
from server.runtime.models import CustomModels, LoadedModels
from server.runtime.notifier import Notifier
from server.runtime.recognition import Recognitions
from server.runtime.releases import Releases
from server.runtime.resolution import Resolver
from server.runtime.sessions import Sessions
from server.runtime.training import Training
from server.runtime.transcribe_jobs import TranscribeJobs
from server.runtime.transcribe_models import TranscribeModels

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
AUTH = web.AppKey("auth", Authenticator)
MODELS = web.AppKey("models", LoadedModels)
SESSIONS = web.AppKey("sessions", Sessions)
RECOGNITIONS = web.AppKey("recognitions", Recognitions)
CUSTOM_MODELS = web.AppKey("custom_models", CustomModels)
CATALOG = web.AppKey("catalog", Catalog)
RELEASES = web.AppKey("releases", Releases)
RESOLVER = web.AppKey("resolver", Resolver)
TRAINING = web.AppKey("training", Training)
NOTIFIER = web.AppKey("notifier", Notifier)
JOBS = web.AppKey("jobs", JobRunner)
TRANSCRIBE_MODELS = web.AppKey("transcribe_models", TranscribeModels)
TRANSCRIBE_JOBS = web.AppKey("transcribe_jobs", TranscribeJobs)
