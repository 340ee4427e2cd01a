"""A Transcribe CLM's lift on IVR audio, measured through the Transcribe dialect with boto3, with a report.

Starts a real S3 server (``scripts/s3.sh``, moto) and the real server (``voxgate serve``, shipped
models) as subprocesses, uploads text to S3 and creates two CLMs on ``NarrowBand`` with boto3's
``create_language_model`` — one on the training text alone (the default weight 0.3), one with
tuning text as well (the weight it picks, :mod:`server.runtime.transcribe_tuning`) — polls
``describe_language_model`` to ``COMPLETED``, then streams every Allison TEST-split prompt (real
speech, 8 kHz; never trained or tuned on) over presigned WebSockets (:mod:`clients.transcribe`)
without and with each CLM, and reports the WER of the finals (:mod:`engine.scoring`, the rule of
every evaluation here).

Data rules (README): training and tuning text are the TRAIN split of the Allison prompt texts
(``asterisk-core-sounds-en``; :func:`engine.recipe.allison.split_of`), tuning every fifth
train-split prompt and training the others, so the two are disjoint; no festival HTS voice is used.

Usage::

    python -m benchmarks.transcribe_clm --out benchmarks/reports [--files 103]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from pathlib import Path

import aiohttp
import boto3
from yarl import URL

from benchmarks.capacity import REPO, ServerProcess, free_port
from clients.transcribe import Credentials, TranscribeConnection, presigned_url
from engine.recipe.allison import SOUNDS, prompts, split_of
from engine.scoring import score

KEY_ID, SECRET, API_KEY = "AKIDBENCH", "bench/secret", "bench-key"
ROLE = "arn:aws:iam::123456789012:role/voxgate-benchmark"
CHUNK_MS = 100


def start_s3(state: Path) -> str:
    """A moto S3 server (``scripts/s3.sh start``); its endpoint URL."""
    out = subprocess.run(["bash", str(REPO / "scripts/s3.sh"), "start", str(state)], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHON": sys.executable})
    return out.stdout.strip()


def stop_s3(state: Path) -> None:
    """Stop the S3 server."""
    subprocess.run(["bash", str(REPO / "scripts/s3.sh"), "stop", str(state)], check=False)


def config_toml(s3_url: str) -> str:
    """The server's config: one key pair, the S3 server, and room for long training."""
    return (f'[s3]\nendpoint_url = "{s3_url}"\nregion = "us-east-1"\naccess_key_id = "bench"\n'
            f'secret_access_key = "bench"\n\n[[credentials]]\ninstance = "bench"\naccess_key_id = "{KEY_ID}"\n'
            f'secret_access_key = "{SECRET}"\napi_key = "{API_KEY}"\n')


def create_clm(client, name: str, bucket: str, tuning: bool, timeout_s: float = 1800) -> dict:
    """``create_language_model`` and poll ``describe_language_model`` until COMPLETED."""
    config = {"S3Uri": f"s3://{bucket}/train/", "DataAccessRoleArn": ROLE}
    if tuning:
        config["TuningDataS3Uri"] = f"s3://{bucket}/tune/"
    client.create_language_model(LanguageCode="en-US", BaseModelName="NarrowBand", ModelName=name,
                                 InputDataConfig=config)
    deadline = time.monotonic() + timeout_s
    while (model := client.describe_language_model(ModelName=name)["LanguageModel"])["ModelStatus"] != "COMPLETED":
        if model["ModelStatus"] == "FAILED" or time.monotonic() > deadline:
            raise RuntimeError(f"CLM {name}: {model}")
        time.sleep(1)
    return model


def saved_weights(port: int) -> dict[str, float | None]:
    """Each model's saved ``customization_weight``, read through Watson's ``/v1/customizations`` (the same catalog)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/customizations",
                                     headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return {m["name"]: m.get("customization_weight") for m in json.loads(r.read())["customizations"]}


async def transcribe_file(http: aiohttp.ClientSession, url: URL, path: Path, clm: str | None) -> str:
    """Stream one WAV file over a presigned WebSocket; the finals' transcript."""
    with wave.open(str(path)) as w:
        rate, audio = w.getframerate(), w.readframes(w.getnframes())
    params = {"language-model-name": clm} if clm else {}
    signed = presigned_url(url, credentials=Credentials(KEY_ID, SECRET), sample_rate_hz=rate, params=params)
    finals = []
    async with await TranscribeConnection.open(http, signed) as stream:
        step = rate * 2 * CHUNK_MS // 1000
        for i in range(0, len(audio), step):
            await stream.send_audio(audio[i:i + step])
        await stream.end_audio()
        async for h in stream.results():
            if h.final:
                finals.append(h.transcript)
    return " ".join(finals)


async def evaluate(port: int, files: list[tuple[Path, str]], clms: dict[str, str | None]) -> dict[str, dict]:
    """WER of each configuration (label → CLM name or None) over ``files``."""
    url = URL(f"ws://127.0.0.1:{port}/stream-transcription-websocket")
    refs = [t for _p, t in files]
    out = {}
    async with aiohttp.ClientSession() as http:
        for label, clm in clms.items():
            hyps = [await transcribe_file(http, url, p, clm) for p, _t in files]
            out[label] = score(refs, hyps).to_dict()
            print(label, f"WER {100 * out[label]['wer']:.1f}%", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write ``transcribe-clm.md`` and ``.json``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    p.add_argument("--files", type=int, default=0, help="test-split prompts to stream (0: all)")
    args = p.parse_args(argv)
    texts = prompts()
    train = [t for n, t in sorted(texts.items()) if split_of(n) == "train"]
    training, tuning = [t for i, t in enumerate(train) if i % 5], [t for i, t in enumerate(train) if not i % 5]
    files = [(SOUNDS / f"{n}.wav", t) for n, t in sorted(texts.items())
             if split_of(n) == "test" and (SOUNDS / f"{n}.wav").exists()]
    files = files[: args.files] if args.files else files
    with tempfile.TemporaryDirectory(prefix="voxgate-clm-bench-") as tmp:
        work = Path(tmp)
        s3_url = start_s3(work / "s3")
        try:
            s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench",
                              aws_secret_access_key="bench")
            s3.create_bucket(Bucket="clm-text")
            s3.put_object(Bucket="clm-text", Key="train/allison-train.txt", Body="\n".join(training).encode())
            s3.put_object(Bucket="clm-text", Key="tune/allison-tune.txt", Body="\n".join(tuning).encode())
            (work / "voxgate.toml").write_text(config_toml(s3_url))
            port = free_port()
            server = ServerProcess(work / "voxgate.toml", port, work / "server.log")
            # this checkout's code (python -m from the repository root), not whatever the voxgate script imports
            server.command = [sys.executable, "-m", "voxgate", *server.command[1:], "--data-dir", str(work / "data")]
            with server:
                server.start(ready_timeout_s=300)
                client = boto3.client("transcribe", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                      aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
                started = time.monotonic()
                create_clm(client, "allison-untuned", "clm-text", tuning=False)
                create_clm(client, "allison-tuned", "clm-text", tuning=True)
                build_s = time.monotonic() - started
                weights = saved_weights(port)
                rows = asyncio.run(evaluate(port, files, {"base only": None, "CLM, weight 0.3 (no tuning data)":
                                                          "allison-untuned", "CLM, tuned weight": "allison-tuned"}))
        finally:
            stop_s3(work / "s3")
    write_report(args.out, rows, files=len(files), training=len(training), tuning=len(tuning),
                 tuned_weight=weights.get("allison-tuned"), build_s=build_s, argv=argv)


def write_report(out: Path, rows: dict, *, files: int, training: int, tuning: int, tuned_weight: float | None,
                 build_s: float, argv: list[str] | None) -> None:
    """transcribe-clm.md and transcribe-clm.json in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.transcribe_clm" + (" " + " ".join(argv) if argv else "")
    (out / "transcribe-clm.json").write_text(json.dumps(
        {"command": command, "date": dt.date.today().isoformat(), "files": files, "training_lines": training,
         "tuning_lines": tuning, "tuned_weight": tuned_weight, "build_seconds": round(build_s, 1), "rows": rows},
        indent=1) + "\n")
    base = rows["base only"]["wer"]
    lines = ["# Transcribe CLM lift on IVR audio (Transcribe dialect, boto3)", "",
             f"Command: `{command}`. {files} Allison TEST-split prompts (real speech, 8 kHz) streamed over presigned "
             "WebSockets to the newest `en-US_NarrowbandModel` (live route: streaming pass, endpointing, Whisper "
             "finals; a CLM rescores the decoder's N-best). CLMs created with boto3 `create_language_model` "
             f"(`NarrowBand`) from {training} train-split prompt texts in S3; the tuned one also had {tuning} other "
             f"train-split texts as `TuningDataS3Uri`, which chose customization weight {tuned_weight}. Both CLMs "
             f"were built (text read from S3, analysed, tuned, trained) in {build_s:.0f} s. WER by `engine/scoring.py` "
             "(README, Accuracy and speed).", "",
             "| configuration | WER | S / D / I | relative to base |", "|---|---|---|---|"]
    for label, r in rows.items():
        rel = (base - r["wer"]) / base if base else 0.0
        lines.append(f"| {label} | {100 * r['wer']:.1f}% | {r['substitutions']} / {r['deletions']} / "
                     f"{r['insertions']} | {'-' if label == 'base only' else f'{100 * rel:+.1f}% fewer errors'} |")
    (out / "transcribe-clm.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
