"""``voxgate transcribe`` and ``voxgate eval``: offline recognition of files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from engine.audio import AudioError, decode_bytes, resample
from engine.bundle import BundleError, ModelNotFoundError
from engine.catalog import LocalModels
from engine.customlm import CustomLM
from engine.manifest import ManifestError, read_manifest
from engine.recognizer import Transcription
from engine.scoring import per_file, score
from protocol.audio import content_type_for_suffix, parse_content_type
from protocol.errors import VoxgateError


class FileError(Exception):
    """A file that could not be recognised; the message names the problem."""


def recognise_file(models: LocalModels, path: Path, *, name: str | None, version: str | None,
                   content_type: str | None = None, final_pass: str | None = None, custom_lm: CustomLM | None = None,
                   customization_weight: float = 0.3, fusion: bool | None = None,
                   whisper_beam: int = 0) -> tuple[Transcription, str]:
    """Decode one file, pick its model, recognise it (``final_pass``: see :mod:`engine.finalpass`;
    ``custom_lm``: a custom language model built for that version; ``fusion``: fused into Whisper's beam;
    ``whisper_beam``: the beam of Whisper's decoder, 0 for the version's own).

    Returns:
        The transcription and the model version used.

    Raises:
        FileError: unreadable file, undecodable or empty audio, unknown model,
            or audio sampled below the model's rate.
    """
    samples, rate = read_audio(path, content_type)
    try:
        bundle = models.get(name=name, version=version, rate_hz=rate)
    except (ModelNotFoundError, BundleError) as exc:
        raise FileError(str(exc)) from exc
    audio = audio_for(bundle, samples, rate)
    return models.recognizer(bundle).transcribe(audio, final_pass=final_pass, custom_lm=custom_lm,
                                                customization_weight=customization_weight, fusion=fusion,
                                                whisper_beam=whisper_beam), bundle.version


def read_audio(path: Path, content_type: str | None = None):
    """A file's samples and rate.

    Raises:
        FileError: unreadable file or undecodable audio.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileError(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        return decode_bytes(data, parse_content_type(content_type or content_type_for_suffix(path.suffix)))
    except (AudioError, VoxgateError) as exc:
        raise FileError(str(exc)) from exc


def audio_for(bundle, samples, rate: int) -> torch.Tensor:
    """``samples`` at ``rate`` resampled for ``bundle``.

    Raises:
        FileError: audio sampled below the model's rate, or too short to recognise.
    """
    if rate < bundle.sample_rate_hz:
        raise FileError(f"audio sampled at {rate} Hz is below the {bundle.sample_rate_hz} Hz of "
                        f"{bundle.name}; use a narrowband model or higher-rate audio")
    if samples.size < bundle.features.win_length * rate // bundle.sample_rate_hz:
        raise FileError("the audio is too short to recognise (under 25 ms)")
    return resample(samples, rate, bundle.sample_rate_hz)


def _fail(path: Path | str, message: str) -> None:
    print(f"voxgate: {path}: {message}", file=sys.stderr)


def transcribe_command(args: argparse.Namespace) -> int:
    """Print ``path<TAB>transcript`` (or JSON) per file; non-zero exit if any file failed."""
    models = LocalModels()
    failed = 0
    for name in args.files:
        path = Path(name)
        try:
            result, version = recognise_file(models, path, name=args.model, version=args.base_model_version,
                                             content_type=args.content_type)
        except FileError as exc:
            _fail(path, str(exc))
            failed += 1
            continue
        if args.json:
            print(json.dumps({"path": name, "transcript": result.transcript,
                              "words": [w.to_dict() for w in result.words],
                              "audio_seconds": round(result.audio_seconds, 3),
                              "processing_seconds": round(result.processing_seconds, 4),
                              "model_version": version}), flush=True)
        else:
            print(f"{name}\t{result.transcript}", flush=True)
    return 1 if failed else 0


def _write_details(path: Path, audio: list[Path], refs: list[str], hyps: list[str]) -> None:
    """One JSON line per file: what was compared (:func:`engine.scoring.per_file`) and its error counts."""
    with path.open("w", encoding="utf-8") as out:
        for a, row in zip(audio, per_file(refs, hyps)):
            out.write(json.dumps({"audio": str(a), **row}) + "\n")


def eval_command(args: argparse.Namespace) -> int:
    """Print WER, CER and real-time factor over a manifest."""
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = Path(args.manifest)
    try:
        rows = read_manifest(manifest)
    except ManifestError as exc:
        _fail(manifest, str(exc))
        return 1
    custom_lm = None
    if args.custom_lm:
        try:
            custom_lm = CustomLM.load(Path(args.custom_lm))
        except ValueError as exc:
            _fail(args.custom_lm, str(exc))
            return 1
    if not 0 <= args.whisper_beam <= 16:
        _fail(manifest, f"--whisper-beam must be between 0 and 16, got {args.whisper_beam}")
        return 1
    if not 0.0 <= args.customization_weight <= 1.0:
        _fail(manifest, f"--customization-weight must be in [0, 1], got {args.customization_weight}")
        return 1
    models = LocalModels()
    refs, hyps, scored_audio, versions = [], [], [], set()
    audio_s = proc_s = 0.0
    errors = 0
    for audio, reference in tqdm(rows, desc="eval", unit="file", file=sys.stderr, disable=None):
        try:
            result, version = recognise_file(models, audio, name=args.model, version=args.base_model_version,
                                             final_pass=None if args.final_pass == "auto" else args.final_pass,
                                             custom_lm=custom_lm, customization_weight=args.customization_weight,
                                             fusion=args.custom_lm_fusion or None, whisper_beam=args.whisper_beam)
        except FileError as exc:
            _fail(audio, str(exc))
            errors += 1
            continue
        refs.append(reference)
        hyps.append(result.transcript)
        scored_audio.append(audio)
        versions.add(version)
        audio_s += result.audio_seconds
        proc_s += result.processing_seconds
    if not refs:
        _fail(manifest, "no file could be recognised")
        return 1
    scored = score(refs, hyps)
    if args.details:
        _write_details(Path(args.details), scored_audio, refs, hyps)
    report = {"manifest": str(manifest), **scored.to_dict(), "errors": errors,
              "audio_seconds": round(audio_s, 2), "processing_seconds": round(proc_s, 3),
              "rtf": round(proc_s / audio_s, 4) if audio_s else None, "torch_threads": torch.get_num_threads(),
              "model_versions": sorted(versions), "final_pass": args.final_pass,
              "whisper_beam": args.whisper_beam,
              "custom_lm": args.custom_lm, "customization_weight": args.customization_weight if custom_lm else None}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"WER {report['wer']:.2%}  CER {report['cer']:.2%}  RTF {report['rtf']}  "
              f"({report['files']} files, {report['audio_seconds']} s audio, {report['torch_threads']} torch threads, "
              f"{', '.join(report['model_versions'])}, final pass {report['final_pass']})")
    return 1 if errors else 0
