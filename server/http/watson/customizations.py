"""The Watson custom language model API: ``/v1/customizations`` (PROTOCOLS.md §1.7, §1.9).

Routes authenticate (the API key's instance owns what it creates), parse
and validate the request, and call the catalog (:mod:`server.catalog`),
which applies the status rules; background work (corpus analysis, training)
goes to :class:`~server.runtime.training.Training`. Unknown query
parameters do not fail a request: the body carries ``warnings``
(``Unexpected query parameter(s) ['x'] detected``), as Watson does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from engine.customlm import CustomWord, word_errors
from protocol.errors import InvalidParameter, NotFoundError, UnsupportedMedia
from server.catalog import LANGUAGE, Corpus, CustomModel, Entry, Kind, Word, WordSpec
from server.http.keys import CATALOG, CUSTOM_MODELS, MODELS, RELEASES, TRAINING
from server.http.watson.errors import instance, watson
from server.runtime.models import LoadedModels

MAX_CORPUS_BYTES = 100 * 1024 * 1024
MAX_WORDS_PER_REQUEST = 100_000
WORDS_PAGE = 5000


def iso(t) -> str:
    """ISO-8601 UTC with milliseconds, as Watson writes times."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def language_model_json(m: CustomModel) -> dict:
    """A Watson ``LanguageModel``."""
    body = {"customization_id": m.id, "created": iso(m.created), "updated": iso(m.updated), "language": m.language,
            "dialect": m.dialect, "versions": [v.base_version for v in m.versions] or [m.base_version],
            "owner": m.owner, "name": m.name, "description": m.description, "base_model_name": m.base_model_name,
            "status": m.status, "progress": m.progress}
    if m.customization_weight is not None:
        body["customization_weight"] = m.customization_weight
    if m.error:
        body["error"] = m.error
    if m.warnings:
        body["warnings"] = m.warnings
    return body


def version_deadlines(m: CustomModel, today: dt.date) -> list[dict]:
    """voxgate extension of a custom model's JSON: each trained version with its deadline and its state today
    (its own deadline governs, not its base version's: ARCHITECTURE lifecycle, Azure's rule)."""
    return [{"base_model_version": v.base_version, "created": iso(v.created),
             "transcription_deadline": v.transcription_deadline.isoformat(),
             "state": Entry(m.id, v.base_version, Kind(m.kind), v.created.date()).state(today).value}
            for v in m.versions]


def corpus_json(c: Corpus) -> dict:
    """A Watson ``Corpus``."""
    body = {"name": c.name, "total_words": c.total_words, "out_of_vocabulary_words": c.out_of_vocabulary_words,
            "status": c.status}
    if c.error:
        body["error"] = c.error
    return body


def word_json(w: Word) -> dict:
    """A Watson ``Word``."""
    body = {"word": w.word, "sounds_like": list(w.sounds_like or []), "display_as": w.display_as or w.word,
            "count": w.count, "source": list(w.source)}
    if w.error:
        body["error"] = w.error
    return body


def query_bool(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidParameter(f"{name} must be true or false, not {value!r}")


def _weight(request: web.Request) -> float | None:
    value = request.query.get("customization_weight")
    if value is None:
        return None
    try:
        weight = float(value)
    except ValueError:
        raise InvalidParameter(f"customization_weight must be a number between 0 and 1, not {value!r}") from None
    if not 0.0 <= weight <= 1.0:
        raise InvalidParameter(f"customization_weight must be between 0 and 1, not {weight}")
    return weight


async def json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidParameter("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidParameter("the request body must be a JSON object")
    return body


class LargeBody(dict):
    """A response body that may be large: :func:`watson_route` serialises it in a thread."""


def watson_route(allowed: tuple[str, ...] = (), *, label: str = "customizations"):
    """Wrap a handler ``(request, owner) -> (status, body)``: auth and unknown-parameter warnings; its errors
    are answered by the error middleware in the Watson shape, counted under ``label``."""
    def wrap(handler):
        @watson(label)
        async def route(request: web.Request) -> web.Response:
            status, body = await handler(request, instance(request))
            unknown = sorted(set(request.query) - set(allowed) - {"access_token"})
            if unknown and isinstance(body, dict):
                body = type(body)({**body, "warnings": f"Unexpected query parameter(s) {unknown} detected"})
            if isinstance(body, LargeBody):  # e.g. every word of a model: serialised off the event loop
                return web.Response(text=await asyncio.to_thread(json.dumps, body), status=status,
                                    content_type="application/json")
            return web.json_response(body, status=status)
        route.__doc__ = handler.__doc__
        return route
    return wrap


def _id(request: web.Request) -> str:
    return request.match_info["customization_id"]


@dataclass(frozen=True)
class ModelRoutes:
    """The handlers both kinds of custom model share: create, list, get, delete, reset, cancel_training."""

    create: object
    list_models: object
    get_model: object
    delete_model: object
    reset: object
    cancel_training: object


def model_routes(kind: str, to_json: Callable[[CustomModel], dict], fields: frozenset[str]) -> ModelRoutes:
    """The shared handlers for one kind (``fields``: what a create body may hold)."""

    @watson_route()
    async def create(request: web.Request, owner: str):
        """``POST``: 201 ``{"customization_id"}``."""
        body = await json_body(request)
        for key in ("name", "base_model_name"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise InvalidParameter(f"{key} is required (a string)")
        unknown = sorted(set(body) - fields)
        if unknown:
            raise InvalidParameter(f"unknown fields in the request body: {unknown}")
        model = await request.app[CATALOG].create(owner, kind, name=body["name"], base_model_name=body["base_model_name"],
                                           description=str(body.get("description") or ""),
                                           dialect=body.get("dialect"))
        return 201, {"customization_id": model.id}

    @watson_route(("language",))
    async def list_models(request: web.Request, owner: str):
        """``GET [?language=]``."""
        models = await request.app[CATALOG].list(owner, kind, language=request.query.get("language"))
        today = request.app[CATALOG].today()
        return 200, {"customizations": [{**to_json(m), "version_deadlines": version_deadlines(m, today)}
                                        for m in models]}

    @watson_route()
    async def get_model(request: web.Request, owner: str):
        """``GET …/{id}``: the model, with ``version_deadlines`` (voxgate)."""
        model = await request.app[CATALOG].get(owner, kind, _id(request))
        return 200, {**to_json(model), "version_deadlines": version_deadlines(model, request.app[CATALOG].today())}

    @watson_route()
    async def delete_model(request: web.Request, owner: str):
        """``DELETE …/{id}``: 409 while a job or a recognition request uses it."""
        custom_id = _id(request)
        await request.app[CATALOG].delete(owner, kind, custom_id, in_use=request.app[CUSTOM_MODELS].in_use.get(custom_id, 0) > 0)
        return 200, {}

    @watson_route()
    async def reset(request: web.Request, owner: str):
        """``POST …/{id}/reset``: removes the model's data and trained versions."""
        await request.app[CATALOG].reset(owner, _id(request), kind)
        return 200, {}

    @watson_route()
    async def cancel_training(request: web.Request, owner: str):
        """``POST …/{id}/cancel_training`` (voxgate): stop a training or upgrade now."""
        await request.app[TRAINING].cancel(owner, kind, _id(request))
        return 200, {}

    return ModelRoutes(create, list_models, get_model, delete_model, reset, cancel_training)


LANGUAGE_ROUTES = model_routes(LANGUAGE, language_model_json,
                               frozenset({"name", "base_model_name", "dialect", "description"}))


@watson_route(("customization_weight", "strict", "word_type_to_add"))
async def train(request: web.Request, owner: str):
    """``POST /v1/customizations/{id}/train``: 200 ``{"warnings": [...]}``, training in the background."""
    word_type = request.query.get("word_type_to_add", "all")
    if word_type not in ("all", "user"):
        raise InvalidParameter(f"word_type_to_add must be all or user, not {word_type!r}")
    warnings = await request.app[CATALOG].start_training(owner, _id(request), customization_weight=_weight(request),
                                                  strict=query_bool(request, "strict", True))
    request.app[TRAINING].train_later(_id(request))
    return 200, {"warnings": warnings} if warnings else {}


@watson_route()
async def upgrade(request: web.Request, owner: str):
    """``POST /v1/customizations/{id}/upgrade_model``: status ``upgrading``, then ``available`` with both versions."""
    await request.app[RELEASES].refresh()  # a release registered a moment ago is installed and servable first
    await request.app[CATALOG].start_upgrade(owner, _id(request), installed=request.app[MODELS].versions)
    request.app[TRAINING].train_later(_id(request))
    return 200, {}


@watson_route()
async def list_corpora(request: web.Request, owner: str):
    """``GET …/corpora``."""
    return 200, {"corpora": [corpus_json(c) for c in await request.app[CATALOG].corpora(owner, _id(request))]}


async def _corpus_text(request: web.Request) -> bytes:
    content_type = request.content_type.lower()
    if content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if part.name == "corpus_file":
                data = await part.read(decode=True)
                if len(data) > MAX_CORPUS_BYTES:
                    raise InvalidParameter(f"the corpus exceeds {MAX_CORPUS_BYTES} bytes")
                return bytes(data)
        raise InvalidParameter("the multipart request has no corpus_file part")
    if content_type not in ("text/plain", "application/octet-stream", ""):
        raise UnsupportedMedia(f"a corpus is plain text (text/plain) or a multipart corpus_file, not {content_type}")
    return await request.read()


@watson_route(("allow_overwrite",))
async def add_corpus(request: web.Request, owner: str):
    """``POST …/corpora/{name}``: 201; analysed in the background (status ``being_processed``, then ``analyzed``)."""
    name = request.match_info["corpus_name"]
    text = await _corpus_text(request)
    await request.app[CATALOG].add_corpus(owner, _id(request), name, text,
                                   allow_overwrite=query_bool(request, "allow_overwrite", False))
    request.app[TRAINING].analyse_later(_id(request), name)
    return 201, {}


@watson_route()
async def get_corpus(request: web.Request, owner: str):
    """``GET …/corpora/{name}``."""
    return 200, corpus_json(await request.app[CATALOG].corpus(owner, _id(request), request.match_info["corpus_name"]))


@watson_route()
async def delete_corpus(request: web.Request, owner: str):
    """``DELETE …/corpora/{name}``: also removes the words only it contributed."""
    await request.app[CATALOG].delete_corpus(owner, _id(request), request.match_info["corpus_name"])
    return 200, {}


def _word_spec(models: LoadedModels, owner_base: str, item: object, *, name: str | None = None) -> WordSpec:
    if not isinstance(item, dict):
        raise InvalidParameter("each word must be a JSON object")
    word = name if name is not None else item.get("word")
    if not isinstance(word, str) or not word.strip():
        raise InvalidParameter("word is required (a non-empty string)")
    sounds_like = item.get("sounds_like", [])
    if not isinstance(sounds_like, list) or not all(isinstance(x, str) for x in sounds_like):
        raise InvalidParameter(f"sounds_like of {word!r} must be a list of strings")
    display_as = item.get("display_as")
    if display_as is not None and (not isinstance(display_as, str) or not display_as.strip()):
        raise InvalidParameter(f"display_as of {word!r} must be a non-empty string")
    spec = CustomWord(word.strip(), tuple(sounds_like), display_as)
    errors = word_errors(spec, models.versions[owner_base].bundle.tokenizer)  # loaded by _base_of
    if errors:
        raise InvalidParameter(f"word {word!r}: {'; '.join(errors)}")
    return WordSpec(spec.word, spec.sounds_like, spec.display_as)


async def _base_of(request: web.Request, owner: str, custom_id: str) -> str:
    model = await request.app[CATALOG].get(owner, LANGUAGE, custom_id)
    if model.base_version not in request.app[MODELS].versions:
        raise NotFoundError(f"base model version {model.base_version} of custom model {custom_id} is not installed")
    await request.app[MODELS].ready(request.app[MODELS].versions[model.base_version])  # its tokenizer checks the words
    return model.base_version


@watson_route(("word_type", "sort", "limit", "offset"))
async def list_words(request: web.Request, owner: str):
    """``GET …/words?word_type=all|user|corpora&sort=alphabetical|count``; voxgate pages it with ``limit``
    and ``offset`` (Watson returns every word; so does voxgate without ``limit``)."""
    limit = _count(request, "limit", low=1)
    offset = _count(request, "offset", low=0) or 0
    word_type, sort = request.query.get("word_type", "all"), request.query.get("sort", "alphabetical")
    out: list[dict] = []
    while limit is None or len(out) < limit:
        # read in pages, so a model of a million words never holds the event loop for long
        page = min(WORDS_PAGE, limit - len(out)) if limit is not None else WORDS_PAGE
        words = await request.app[CATALOG].words(owner, _id(request), word_type=word_type, sort=sort, limit=page,
                                          offset=offset + len(out))
        out += [word_json(w) for w in words]
        if len(words) < page:
            break
    return 200, LargeBody(words=out)


def _count(request: web.Request, name: str, *, low: int) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    if not value.isdigit() or int(value) < low:
        raise InvalidParameter(f"{name} must be an integer of at least {low}, not {value!r}")
    return int(value)


@watson_route()
async def add_words(request: web.Request, owner: str):
    """``POST …/words`` with ``{"words": [CustomWord]}``: 201."""
    body = await json_body(request)
    items = body.get("words")
    if not isinstance(items, list) or not items:
        raise InvalidParameter('the body must be {"words": [...]} with at least one word')
    if len(items) > MAX_WORDS_PER_REQUEST:
        raise InvalidParameter(f"at most {MAX_WORDS_PER_REQUEST} words per request")
    base = await _base_of(request, owner, _id(request))
    specs = [_word_spec(request.app[MODELS], base, item) for item in items]
    await request.app[CATALOG].add_words(owner, _id(request), specs)
    return 201, {}


def _word_name(request: web.Request) -> str:
    return request.match_info["word_name"]  # aiohttp has decoded it once; a second unquote turned %2541 into A


@watson_route()
async def put_word(request: web.Request, owner: str):
    """``PUT …/words/{word}`` with ``{"sounds_like", "display_as"}``: 201."""
    body = await json_body(request)
    name = _word_name(request)
    if "word" in body and body["word"] != name:
        raise InvalidParameter(f"the body's word {body['word']!r} differs from the word in the path {name!r}")
    base = await _base_of(request, owner, _id(request))
    await request.app[CATALOG].add_words(owner, _id(request), [_word_spec(request.app[MODELS], base, body, name=name)])
    return 201, {}


@watson_route()
async def get_word(request: web.Request, owner: str):
    """``GET …/words/{word}``."""
    return 200, word_json(await request.app[CATALOG].word(owner, _id(request), _word_name(request)))


@watson_route()
async def delete_word(request: web.Request, owner: str):
    """``DELETE …/words/{word}``."""
    await request.app[CATALOG].delete_word(owner, _id(request), _word_name(request))
    return 200, {}


@watson_route()
async def grammars(request: web.Request, owner: str):
    """``…/grammars``: not supported (501)."""
    await request.app[CATALOG].get(owner, LANGUAGE, _id(request))
    return 501, {"code": 501, "code_description": "Not Implemented",
                 "error": "Grammars are not supported by this server; use corpora and words"}


def shared_routes(base: str, handlers: ModelRoutes) -> list[web.RouteDef]:
    """Routes of the handlers both kinds share, under ``base``."""
    one = base + "/{customization_id}"
    return [web.post(base, handlers.create), web.get(base, handlers.list_models), web.get(one, handlers.get_model),
            web.delete(one, handlers.delete_model), web.post(one + "/reset", handlers.reset),
            web.post(one + "/cancel_training", handlers.cancel_training)]


def routes() -> list[web.RouteDef]:
    """Every route of the custom language model API."""
    base = "/v1/customizations"
    one = base + "/{customization_id}"
    return [
        *shared_routes(base, LANGUAGE_ROUTES),
        web.post(one + "/train", train), web.post(one + "/upgrade_model", upgrade),
        web.get(one + "/corpora", list_corpora), web.post(one + "/corpora/{corpus_name}", add_corpus),
        web.get(one + "/corpora/{corpus_name}", get_corpus), web.delete(one + "/corpora/{corpus_name}", delete_corpus),
        web.get(one + "/words", list_words), web.post(one + "/words", add_words),
        web.put(one + "/words/{word_name}", put_word), web.get(one + "/words/{word_name}", get_word),
        web.delete(one + "/words/{word_name}", delete_word),
        web.route("*", one + "/grammars", grammars), web.route("*", one + "/grammars/{grammar_name}", grammars),
    ]
