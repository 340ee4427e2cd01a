"""The ``voxgate`` command line: the top layer, above server, clients and engine.

Subcommands:
    transcribe  recognise files offline and print their transcripts
    eval        WER, CER and real-time factor over a manifest
    serve       start the server on the shipped base models
    stream      stream a file to a server in real time and print the results (clients.cli)
    presign     print a presigned Transcribe WebSocket URL (clients.cli)
    loadtest    concurrent real-time streams against a server: latencies and errors (clients.cli)
    models      the installed models: ``models lifecycle`` prints deadlines and states
"""

from __future__ import annotations

import argparse
import sys

from clients import cli as client_commands
from voxgate import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="voxgate", description="Self-hosted streaming speech recognition.")
    parser.add_argument("--version", action="version", version=f"voxgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="recognise audio files offline")
    t.add_argument("--model", help="model name (default: by sample rate)")
    t.add_argument("--base-model-version", help="version id, e.g. en-US_BroadbandModel.v2026-05-01")
    t.add_argument("--json", action="store_true", help="one JSON object per file")
    t.add_argument("--content-type", help="content type of headerless audio, e.g. 'audio/l16;rate=16000'")
    t.add_argument("files", nargs="+", metavar="FILE")

    e = sub.add_parser("eval", help="word and character error rate over a manifest")
    e.add_argument("--manifest", required=True, help="TSV of audio_path<TAB>reference, paths relative to it")
    e.add_argument("--model", help="model name (default: by sample rate)")
    e.add_argument("--base-model-version", help="version id")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    e.add_argument("--final-pass", choices=("auto", "whisper", "whisper-fast", "ctc", "greedy"), default="auto",
                   help="what makes each final (default: the version's own; see README)")
    e.add_argument("--whisper-beam", type=int, default=0,
                   help="Whisper-based versions: the beam of Whisper's decoder for the finals, 1-16 (default 0: the "
                        "version's own greedy decode, as on live streams; the server's sessionless requests use 4)")
    e.add_argument("--custom-lm", help="a trained custom language model folder to recognise with")
    e.add_argument("--customization-weight", type=float, default=0.3,
                   help="its weight in [0, 1] (default 0.3, Watson's)")
    e.add_argument("--details", help="also write one JSON line per file to this path: audio, reference and "
                                     "hypothesis as scored, and that file's errors")
    e.add_argument("--custom-lm-fusion", action="store_true",
                   help="Whisper-based versions: fuse the custom LM into the decoder's beam search "
                        "(the server's [recognition] custom_lm_fusion) instead of rescoring its N-best")

    s = sub.add_parser("serve", help="start the server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--models-dir", help="folder of model artifacts (default: the shipped models/)")
    s.add_argument("--config", help="TOML file with credentials, limits and batching (see README)")
    s.add_argument("--data-dir", help="catalog database and custom models (default: $VOXGATE_DATA_DIR or ./voxgate-data)")
    s.add_argument("--database-url", help="async SQLAlchemy URL of the catalog instead of the SQLite file in the "
                                          "data dir, e.g. postgresql+asyncpg://user:password@host/voxgate")

    client_commands.add_parsers(sub)

    m = sub.add_parser("models", help="installed models and their lifecycle")
    msub = m.add_subparsers(dest="models_command", required=True)
    lc = msub.add_parser("lifecycle", help="every model version with its deadlines and its state on a date")
    lc.add_argument("--at", type=_date, help="the date to judge, YYYY-MM-DD (default: today)")
    lc.add_argument("--json", action="store_true", help="print a JSON list")
    reg = msub.add_parser("register", help="install a new base model version (a release) into the data directory")
    reg.add_argument("path", help="the model artifact folder (manifest.json, weights, tokenizer)")
    imp = msub.add_parser("import", help="check a Whisper checkpoint of your own and write it as a weights artifact "
                                         "the training recipe builds base-model versions on")
    imp.add_argument("path", help="a CTranslate2 model folder (model.bin, tokenizer.json) or an openai-whisper .pt")
    imp.add_argument("--out", required=True, help="the new artifact's folder (must not exist)")
    imp.add_argument("--licence", required=True, help="the weights' licence, recorded in the manifest (e.g. MIT)")
    imp.add_argument("--name", help="the artifact's name (default: imported- and 12 hex digits of its sha256)")
    imp.add_argument("--tokenizer", help="a Whisper tokenizer.json (default: the checkpoint's own, or the pinned "
                                         "weights' with the same vocabulary)")
    cmp = msub.add_parser("compare", help="WER of each trained version of a custom model, and of its base alone, on "
                                          "your own audio (before switching to an upgraded version)")
    cmp.add_argument("customization_id", help="the custom language or acoustic model")
    cmp.add_argument("--manifest", required=True, help="TSV of audio_path<TAB>reference, paths relative to it")
    cmp.add_argument("--json", action="store_true", help="print one JSON object")
    cmp.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    for p in (lc, reg, cmp):
        p.add_argument("--models-dir", help="folder of model artifacts (default: the shipped models/)")
        p.add_argument("--data-dir", help="the server's data directory (default: $VOXGATE_DATA_DIR or ./voxgate-data)")
        p.add_argument("--database-url", help="the catalog's database URL, when not the SQLite file in the data dir")
    return parser


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command in client_commands.COMMANDS:
        return client_commands.run(args)
    if args.command == "models":
        from voxgate import lifecycle

        if args.models_command == "import":
            return lifecycle.import_command(args)
        if args.models_command == "register":
            return lifecycle.register_command(args)
        if args.models_command == "compare":
            from voxgate.compare import compare_command

            return compare_command(args)
        return lifecycle.lifecycle_command(args)
    if args.command in ("transcribe", "eval"):
        from voxgate import offline

        return offline.transcribe_command(args) if args.command == "transcribe" else offline.eval_command(args)
    from server.app import serve

    return serve(host=args.host, port=args.port, models_dir=args.models_dir, config_path=args.config,
                 data_dir=args.data_dir, database_url=args.database_url)


if __name__ == "__main__":
    sys.exit(main())
