"""Keyword spotting (Watson ``keywords`` / ``keywords_threshold``): precision and recall on real speech.

The set is built from the TRAIN split of the Allison prompts (asterisk-core-sounds-en, real speech,
8 kHz; the test split stays untouched): the keywords are the words of four or more letters said in
at least 3 and at most 40 of its prompts, function words aside, the 30 most frequent. Every prompt is recognised once with the newest narrowband
version (live finals, :meth:`engine.recognizer.Recognizer.transcribe`), and
:func:`protocol.watson.spot_keywords` — what the server puts in ``keywords_result`` — spots the
keywords in its final words at each threshold. A (prompt, keyword) pair is relevant when the
keyword is in the prompt's normalised transcript; a spot counts once per pair.

Writes ``keywords.md``, ``keywords.json`` and ``keywords.png`` (precision and recall by
threshold) into ``--out``.

Usage: ``python -m benchmarks.keywords --out benchmarks/reports``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import matplotlib
import torch
from tqdm import tqdm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from engine.audio import load_audio  # noqa: E402
from engine.bundle import load_bundle, resolve_model  # noqa: E402
from engine.catalog import default_models_dir  # noqa: E402
from engine.recipe.allison import SOUNDS, prompts, split_of  # noqa: E402
from engine.recognizer import Recognizer  # noqa: E402
from engine.text import normalize_transcript  # noqa: E402
from protocol.watson import WordHypothesis, spot_keywords  # noqa: E402

THRESHOLDS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: function words, which nobody spots for
STOPWORDS = frozenset("""about again also been could from have into more other should than that their them then
there these they this were what when which will with would your""".split())


def spoken(text: str) -> set[str]:
    """The words a prompt's transcript says (its notes in parentheses, "(4 seconds of silence)", aside)."""
    return set(normalize_transcript(re.sub(r"\([^)]*\)", " ", text)).split())


def choose_keywords(texts: list[str], count: int = 30) -> list[str]:
    """Words of 4+ letters in 3-40 of the texts, the ``count`` most frequent (ties alphabetical)."""
    documents = Counter(w for t in texts for w in spoken(t))
    eligible = [(n, w) for w, n in documents.items() if len(w) >= 4 and 3 <= n <= 40 and w not in STOPWORDS]
    return [w for _, w in sorted(eligible, key=lambda item: (-item[0], item[1]))[:count]]


def main(argv: list[str] | None = None) -> None:
    """Recognise the TRAIN split, spot, count, write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    p.add_argument("--files", type=int, default=0, help="at most this many prompts (0: all)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    train = [(SOUNDS / f"{n}.wav", t) for n, t in sorted(prompts().items())
             if split_of(n) == "train" and (SOUNDS / f"{n}.wav").exists()]
    if args.files:
        train = train[: args.files]
    keywords = choose_keywords([t for _, t in train])
    bundle = load_bundle(resolve_model(default_models_dir(), "en-US_NarrowbandModel").path)
    recognizer = Recognizer(bundle)
    counts = {t: {"tp": 0, "fp": 0, "fn": 0} for t in THRESHOLDS}
    for wav, text in tqdm(train, desc="keywords", unit="prompt", file=sys.stderr):
        said = spoken(text)
        out = recognizer.transcribe(load_audio(wav, bundle.sample_rate_hz))
        words = tuple(WordHypothesis(w.word, w.start, w.end, w.confidence) for w in out.words)
        for threshold in THRESHOLDS:
            spotted = set(spot_keywords(words, tuple(keywords), threshold))
            for k in keywords:
                relevant = k in said
                c = counts[threshold]
                c["tp"] += relevant and k in spotted
                c["fp"] += (not relevant) and k in spotted
                c["fn"] += relevant and k not in spotted
    rows = []
    for t, c in counts.items():
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        rows.append({"threshold": t, **c, "precision": precision, "recall": recall})
    command = " ".join(["python -m benchmarks.keywords", *(sys.argv[1:] if argv is None else argv)])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "keywords.json").write_text(json.dumps({"command": command, "model": bundle.version,
                                                       "prompts": len(train), "keywords": keywords, "rows": rows},
                                                      indent=1) + "\n")
    lines = ["# Keyword spotting on the Allison TRAIN split (real speech, 8 kHz)", "",
             f"Command: `{command}`; {bundle.version}, live finals, {len(train)} prompts, {len(keywords)} keywords "
             f"({', '.join(keywords)}). A (prompt, keyword) pair is relevant when the keyword is in the prompt's "
             "transcript; spotted when `keywords_result` (`protocol.watson.spot_keywords`) holds it at the threshold.",
             "", "| keywords_threshold | true positives | false positives | missed | precision | recall |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['threshold']} | {r['tp']} | {r['fp']} | {r['fn']} | {100 * r['precision']:.1f}% | "
              f"{100 * r['recall']:.1f}% |" for r in rows]
    (args.out / "keywords.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["threshold"] for r in rows], [100 * r["precision"] for r in rows], marker="o", label="precision")
    ax.plot([r["threshold"] for r in rows], [100 * r["recall"] for r in rows], marker="o", label="recall")
    ax.set_xlabel("keywords_threshold")
    ax.set_ylabel("%")
    ax.set_title(f"Keyword spotting, {bundle.version}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "keywords.png", dpi=100)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
