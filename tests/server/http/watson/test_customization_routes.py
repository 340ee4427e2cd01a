"""The /v1/customizations and /v1/recognitions routes on bad input: specific statuses and messages, Watson's
error body, unknown-parameter warnings, and nothing changed by a refused request."""

from __future__ import annotations

import asyncio

import aiohttp

CREDENTIALS = {"credentials": [{"instance": "acme", "api_key": "acme-key"}, {"instance": "rival", "api_key": "rival-key"}]}
ACME = {"Authorization": "Bearer acme-key"}
RIVAL = {"Authorization": "Bearer rival-key"}


def call(server, *requests):
    """Run ``(method, path, kwargs)`` requests in order; return ``(status, json or None)`` for each."""
    async def main():
        out = []
        async with aiohttp.ClientSession(server.http) as http:
            for method, path, kwargs in requests:
                async with http.request(method, path, **kwargs) as r:
                    body = await r.json() if r.content_type == "application/json" else None
                    out.append((r.status, body))
        return out
    return asyncio.run(main())


def _form(part: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(part, b"some text", filename="corpus.txt", content_type="text/plain")
    return form


def created(server, model: str) -> str:
    [(status, body)] = call(server, ("POST", "/v1/customizations",
                                     {"json": {"name": "m", "base_model_name": model}, "headers": ACME}))
    assert status == 201, body
    return body["customization_id"]


def test_create_validates_and_reports_unknown_parameters(server_factory, tiny_bundle):
    server = server_factory(CREDENTIALS)
    results = call(server,
                   ("POST", "/v1/customizations", {"json": {"base_model_name": tiny_bundle.name}, "headers": ACME}),
                   ("POST", "/v1/customizations", {"data": b"{nope", "headers": ACME}),
                   ("POST", "/v1/customizations", {"json": {"name": "m", "base_model_name": "nope"}, "headers": ACME}),
                   ("POST", "/v1/customizations", {"json": {"name": "m", "base_model_name": tiny_bundle.name}}),
                   ("POST", "/v1/customizations?colour=red",
                    {"json": {"name": "m", "base_model_name": tiny_bundle.name}, "headers": ACME}),
                   ("POST", "/v1/customizations",
                    {"json": {"name": "m", "base_model_name": tiny_bundle.name}, "headers": ACME}))
    assert [s for s, _ in results] == [400, 400, 400, 401, 201, 409]
    assert results[0][1] == {"code": 400, "code_description": "Bad Request", "error": "name is required (a string)"}
    assert "not valid JSON" in results[1][1]["error"]
    assert "not a known base model" in results[2][1]["error"]
    assert results[4][1]["warnings"] == "Unexpected query parameter(s) ['colour'] detected"
    assert "already exists" in results[5][1]["error"]


def test_resources_of_a_model(server_factory, tiny_bundle):
    server = server_factory(CREDENTIALS)
    cid = created(server, tiny_bundle.name)
    base = f"/v1/customizations/{cid}"
    results = call(server,
                   ("GET", base, {"headers": RIVAL}),
                   ("GET", "/v1/customizations/no-such-id", {"headers": ACME}),
                   ("POST", f"{base}/corpora/user", {"data": b"text", "headers": ACME}),
                   ("POST", f"{base}/corpora/c", {"data": b"text", "headers": {**ACME, "Content-Type": "image/png"}}),
                   ("POST", f"{base}/corpora/c", {"data": _form("other"), "headers": ACME}),
                   ("POST", f"{base}/words", {"json": {"words": []}, "headers": ACME}),
                   ("POST", f"{base}/words", {"json": {"words": [{"word": "x", "sounds_like": ["a"] * 6}]},
                                              "headers": ACME}),
                   ("PUT", f"{base}/words/zed", {"json": {"word": "other"}, "headers": ACME}),
                   ("POST", f"{base}/train", {"headers": ACME}),
                   ("POST", f"{base}/train?customization_weight=2", {"headers": ACME}),
                   ("GET", f"{base}/words?word_type=odd", {"headers": ACME}),
                   ("GET", f"{base}/corpora/none", {"headers": ACME}),
                   ("POST", f"{base}/grammars/g", {"data": b"<grammar/>", "headers": ACME}),
                   ("PUT", f"{base}/words/zed", {"json": {"display_as": "Zed"}, "headers": ACME}),
                   ("GET", f"{base}/words/zed", {"headers": ACME}),
                   ("GET", base, {"headers": ACME}),
                   ("POST", f"{base}/upgrade_model", {"headers": ACME}),
                   ("DELETE", f"{base}/words/zed", {"headers": RIVAL}),
                   ("GET", f"{base}/words?limit=0", {"headers": ACME}),
                   ("PUT", f"{base}/words/call%20center", {"json": {}, "headers": ACME}),
                   ("PUT", f"{base}/words/zorbo", {"json": {"sounds_like": ["zor\u0000bo"]}, "headers": ACME}),
                   ("GET", f"{base}/words?limit=1&offset=0", {"headers": ACME}),
                   ("DELETE", base, {"headers": ACME}),
                   ("GET", base, {"headers": ACME}))
    statuses = [s for s, _ in results]
    assert statuses == [404, 404, 400, 415, 400, 400, 400, 400, 400, 400, 400, 404, 501, 201, 200, 200, 400, 404,
                        400, 400, 400, 200, 200, 404]
    assert "limit must be an integer of at least 1" in results[18][1]["error"]
    assert "contains spaces" in results[19][1]["error"]
    assert "control characters" in results[20][1]["error"]
    assert [w["word"] for w in results[21][1]["words"]] == ["zed"]
    assert "version_deadlines" in results[15][1] and results[15][1]["version_deadlines"] == []
    assert "reserved" in results[2][1]["error"]
    assert "no corpus_file part" in results[4][1]["error"]
    assert "at most 5 sounds_like" in results[6][1]["error"] or "sounds_like" in results[6][1]["error"]
    assert "No input data available" in results[8][1]["error"]
    assert "between 0 and 1" in results[9][1]["error"]
    assert results[14][1] == {"word": "zed", "sounds_like": [], "display_as": "Zed", "count": 0, "source": ["user"]}
    assert results[15][1]["status"] == "ready"
    assert "already on the newest" in results[16][1]["error"]


def test_jobs_refuse_bad_requests(server_factory):
    server = server_factory(CREDENTIALS)
    results = call(server,
                   ("POST", "/v1/recognitions", {"data": b"x" * 200, "headers": {**ACME, "Content-Type": "audio/wav"},
                                                 "params": {"callback_url": "http://example.com/cb"}}),
                   ("POST", "/v1/recognitions", {"data": b"", "headers": {**ACME, "Content-Type": "audio/wav"}}),
                   ("POST", "/v1/recognitions", {"data": b"x" * 200, "headers": ACME,
                                                 "params": {"language_customization_id": "nope"}}),
                   ("POST", "/v1/recognitions", {"data": b"x" * 200, "headers": ACME,
                                                 "params": {"base_model_version": "nope.v2020-01-01"}}),
                   ("GET", "/v1/recognitions/nope", {"headers": ACME}),
                   ("DELETE", "/v1/recognitions/nope", {"headers": ACME}),
                   ("GET", "/v1/recognitions", {"headers": RIVAL}))
    assert [s for s, _ in results] == [400, 400, 404, 404, 404, 404, 200]
    assert "is not registered for these credentials" in results[0][1]["error"]
    assert results[6][1] == {"recognitions": []}


def test_a_job_with_undecodable_audio_fails_with_a_reason(server_factory):
    server = server_factory(CREDENTIALS)
    [(status, job)] = call(server, ("POST", "/v1/recognitions",
                                    {"data": b"not audio at all " * 20, "headers": {**ACME, "Content-Type": "audio/wav"}}))
    assert status == 201 and job["status"] == "waiting"

    async def poll():
        async with aiohttp.ClientSession(server.http, headers=ACME) as http:
            for _ in range(200):
                async with http.get(f"/v1/recognitions/{job['id']}") as r:
                    body = await r.json()
                if body["status"] in ("completed", "failed"):
                    return body
                await asyncio.sleep(0.05)
    done = asyncio.run(poll())
    assert done["status"] == "failed" and done["error"]


def test_acoustic_audio_resources_over_http(server_factory, tiny_bundle):
    import io
    import zipfile

    from tests.conftest import FIXTURES

    server = server_factory(CREDENTIALS)
    [(status, body)] = call(server, ("POST", "/v1/acoustic_customizations",
                                     {"json": {"name": "voices", "base_model_name": tiny_bundle.name}, "headers": ACME}))
    assert status == 201
    base = f"/v1/acoustic_customizations/{body['customization_id']}"
    wav = (FIXTURES / "hello.wav").read_bytes()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.wav", wav)
        z.writestr("transcripts.tsv", "a.wav\thello world\n")
    results = call(server,
                   ("POST", f"{base}/audio/one", {"data": wav, "headers": {**ACME, "Content-Type": "audio/wav",
                                                                           "Transcript": "hello%20world"}}),
                   ("POST", f"{base}/audio/one", {"data": wav, "headers": {**ACME, "Content-Type": "audio/wav"}}),
                   ("POST", f"{base}/audio/pack", {"data": archive.getvalue(),
                                                   "headers": {**ACME, "Content-Type": "application/zip",
                                                               "Contained-Content-Type": "audio/wav"}}),
                   ("POST", f"{base}/audio/junk", {"data": b"not audio" * 20,
                                                   "headers": {**ACME, "Content-Type": "audio/wav"}}),
                   ("POST", f"{base}/audio/tiny", {"data": b"RIFF", "headers": {**ACME, "Content-Type": "audio/wav"}}),
                   ("GET", f"{base}/audio", {"headers": RIVAL}))
    assert [s for s, _ in results] == [201, 409, 201, 201, 400, 404]

    async def settled():
        async with aiohttp.ClientSession(server.http, headers=ACME) as http:
            for _ in range(200):
                async with http.get(f"{base}/audio") as r:
                    listing = await r.json()
                if all(a["status"] != "being_processed" for a in listing["audio"]):
                    return listing
                await asyncio.sleep(0.05)
    listing = asyncio.run(settled())
    by_name = {a["name"]: a for a in listing["audio"]}
    assert by_name["one"]["status"] == "ok" and by_name["one"]["details"]["type"] == "audio"
    assert by_name["pack"]["status"] == "ok" and by_name["pack"]["details"]["compression"] == "zip"
    assert by_name["junk"]["status"] == "invalid" and by_name["junk"]["error"]
    assert 0 < listing["total_minutes_of_audio"] < 0.1
    results = call(server, ("GET", f"{base}/audio/pack", {"headers": ACME}),
                   ("POST", f"{base}/train", {"headers": ACME}),
                   ("POST", f"{base}/train?strict=false", {"headers": ACME}),
                   ("POST", f"{base}/cancel_training", {"headers": ACME}),
                   ("DELETE", f"{base}/audio/junk", {"headers": ACME}),
                   ("GET", base, {"headers": ACME}))
    assert [s for s, _ in results] == [200, 400, 400, 400, 200, 200]
    assert results[0][1]["container"]["name"] == "pack" and len(results[0][1]["audio"]) == 1
    assert "[junk]" in results[1][1]["error"]
    assert "at least 1 minutes of valid audio" in results[2][1]["error"]
    assert "no training in progress" in results[3][1]["error"]
    assert results[5][1]["status"] == "ready"


def test_resource_names_beyond_a_file_name_or_with_control_characters(server_factory, tiny_bundle):
    # issue 13, defect 9: 128 x 'é' is 256 bytes, 100 x '好' 300: too long for a file name, once a 500
    from urllib.parse import quote

    server = server_factory(CREDENTIALS)
    cid = created(server, tiny_bundle.name)
    base = f"/v1/customizations/{cid}"
    long_names = ["é" * 128, "好" * 100]
    results = call(server, *[("POST", f"{base}/corpora/{quote(n)}", {"data": b"hello there", "headers": ACME})
                             for n in long_names],
                   ("POST", f"{base}/corpora/a%00b", {"data": b"hello there", "headers": ACME}),
                   ("POST", f"{base}/corpora/a%07b", {"data": b"hello there", "headers": ACME}),
                   ("GET", f"{base}/corpora", {"headers": ACME}))
    assert [s for s, _ in results[:2]] == [201, 201]
    assert [s for s, _ in results[2:4]] == [400, 400] and "control characters" in results[2][1]["error"]
    assert sorted(c["name"] for c in results[4][1]["corpora"]) == sorted(long_names)
    [(status, body)] = call(server, ("GET", f"{base}/corpora/{quote(long_names[1])}", {"headers": ACME}))
    assert status == 200 and body["name"] == long_names[1]


def test_the_start_up_sweep_removes_what_no_record_points_at(server_factory, tiny_bundle, tmp_path):
    # issue 13, defect 7: files of a model deleted while its archive was processed stayed for good
    import io
    import zipfile

    from tests.conftest import FIXTURES

    server = server_factory(CREDENTIALS)
    [(status, body)] = call(server, ("POST", "/v1/acoustic_customizations",
                                     {"json": {"name": "voices", "base_model_name": tiny_bundle.name}, "headers": ACME}))
    cid = body["customization_id"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.wav", (FIXTURES / "hello.wav").read_bytes())
    [(status, _)] = call(server, ("POST", f"/v1/acoustic_customizations/{cid}/audio/pack",
                                  {"data": archive.getvalue(), "headers": {**ACME, "Content-Type": "application/zip",
                                                                           "Contained-Content-Type": "audio/wav"}}))
    assert status == 201

    async def settled():
        async with aiohttp.ClientSession(server.http, headers=ACME) as http:
            for _ in range(200):
                async with http.get(f"/v1/acoustic_customizations/{cid}/audio/pack") as r:
                    if (await r.json()).get("status") != "being_processed":
                        return
                await asyncio.sleep(0.05)
    asyncio.run(settled())
    server.stop()
    root = tmp_path / "data" / "customizations"
    kept = sorted(p.relative_to(root).as_posix() for p in (root / cid).rglob("*") if p.is_file())
    ghosts = [root / "deleted-model" / "audio" / "x.files" / "00000.audio", root / cid / "audio" / "ghost.upload",
              root / cid / "audio" / "ghost.files" / "00000.audio", root / cid / "corpora" / "ghost.txt",
              root / cid / "audio" / ".pack.upload.1234abcd.tmp"]
    for ghost in ghosts:
        ghost.parent.mkdir(parents=True, exist_ok=True)
        ghost.write_bytes(b"left behind")
    server_factory(CREDENTIALS)  # the same data directory
    assert not (root / "deleted-model").exists()
    assert sorted(p.relative_to(root).as_posix() for p in (root / cid).rglob("*") if p.is_file()) == kept
    assert any(k.endswith("pack.files/00000.audio") for k in kept)


def test_word_paths_are_decoded_once(server_factory, tiny_bundle):
    # issue 13: PUT …/words/%2541bc stored "Abc" (the path was URL-decoded twice)
    server = server_factory(CREDENTIALS)
    base = f"/v1/customizations/{created(server, tiny_bundle.name)}"
    results = call(server, ("PUT", f"{base}/words/caf%C3%A9", {"json": {}, "headers": ACME}),
                   ("PUT", f"{base}/words/%2541bc", {"json": {}, "headers": ACME}),
                   ("GET", f"{base}/words", {"headers": ACME}))
    statuses = [s for s, _ in results]
    assert statuses[0] == 201 and statuses[2] == 200
    words = {w["word"] for w in results[2][1]["words"]}
    assert "café" in words and "Abc" not in words
    assert ("%41bc" in words) == (statuses[1] == 201)  # stored as sent, or refused as a bad word, never rewritten
