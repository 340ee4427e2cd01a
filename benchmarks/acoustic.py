"""A custom acoustic model on real speech: the Allison prompts, train split -> test split.

With the newest ``en-US_NarrowbandModel`` in ``models/``, a custom acoustic model
(:func:`engine.acoustic.adapt_acoustic_model`, default :class:`~engine.acoustic.AdaptConfig`)
is trained on the TRAIN split of the Allison prompts (asterisk-core-sounds-en, 8 kHz, one
speaker; prompts whose name's sha1 hex digest ends in 3-f) with their real transcripts, and
a custom LM (:func:`engine.customlm.build_custom_lm`) on the TRAIN-split prompt texts only.
Everything is evaluated on the TEST split (digest ends in 0-2), which is never trained or
tuned on: WER and CER (:mod:`engine.scoring`) of

- the base model, alone and with the custom LM;
- the custom acoustic model, alone and with the custom LM;
- pocketsphinx 5 (its en-US model) on the same test audio;
- a custom acoustic model trained on pseudo-labels instead of the real transcripts (the base
  model's transcripts with the custom LM, :func:`engine.acoustic.pseudo_label`), alone and
  with the custom LM.

The customization weight is :func:`customization_weight` of the base's architecture, picked on
train-split audio. On a Whisper-based version the custom acoustic model is a LoRA adapter of the
final pass (:mod:`engine.whisper.adapt`); each row's real-time factor shows what it costs.
Training runs on 2 torch threads; its time is reported. Generated artifacts go to ``--cache``
(outside git).

Usage::

    python -m benchmarks.acoustic --out benchmarks/reports
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks import pocketsphinx_baseline  # noqa: E402
from engine.acoustic import AdaptConfig, adapt_acoustic_model, pseudo_label  # noqa: E402
from engine.adapted import load_adapted_bundle  # noqa: E402
from engine.audio import load_audio  # noqa: E402
from engine.bundle import load_bundle, resolve_model  # noqa: E402
from engine.catalog import default_models_dir  # noqa: E402
from engine.customlm import CustomLM, build_custom_lm  # noqa: E402
from engine.recipe.allison import SOUNDS, prompts, split_of, write_manifest  # noqa: E402
from engine.recognizer import Recognizer  # noqa: E402
from engine.scoring import score, wer  # noqa: E402

#: the custom LM's weight per architecture: 0.15 on the Whisper-based versions (picked on TRAIN-split
#: Allison audio by an earlier benchmarks/customlm, whose tuning LM then held the tuning audio's texts; it
#: now picks 0.3 for the base; on the adapter, the held-out TRAIN split gives 9.0% at 0.15 and at 0.3,
#: benchmarks/reports/acoustic-heldout.md, so the measured rows were left at 0.15), 0.9 on the
#: convolutional ones (picked on the held-out part of the TRAIN split, engine/acoustic.py)
WHISPER_CUSTOMIZATION_WEIGHT = 0.15
CTC_CUSTOMIZATION_WEIGHT = 0.9
#: issue 12's target for custom AM + custom LM on the test split, and for the training time
TARGET_WER = 0.015
TARGET_TRAIN_MINUTES = 10.0
#: the report's reading of a Whisper-based version's numbers (the run's own figures are filled in)
WHISPER_NOTES = """\
Reading the numbers, and what would close the rest:

- The adapter (LoRA factors on Whisper's decoder and top 2 encoder blocks, 52 layers, 0.9 MB)
  alone takes the base from {base:.1%} to {am:.1%}; the custom LM alone to {lm:.1%}, and with the
  adapter to {both:.1%}: both learn the same prompts' wording, and the adapted decoder already writes it.
- The adapter memorises its {minutes:.0f} minutes of one voice within a few epochs (training loss
  {first_loss:.2f} to {last_loss:.2f}). More of the user's audio is the first lever; regularising the adapter
  (dropout on the factors, fewer targets) the second (engine/acoustic.py has the configurations tried
  on the held-out part of the TRAIN split).
- Without a custom LM the finals are the live route's int8 greedy decode; with one, a beam of 4
  rescored at weight {weight:g}, a weight picked for the base's decoder: one picked for the adapted
  decoder, and a beam without a custom LM, are untried.
- Pseudo-labels (when run) come from the base's own final pass with the custom LM (label WER in the
  training table): an adapter trained on them learnt the base's own mistakes back and gained nothing
  over the base in the runs so far. Transcripts are what a custom acoustic model of this base needs;
  labels from a stronger offline pass (beam, larger model) would be the way to use untranscribed audio.
"""


def customization_weight(bundle) -> float:
    """The custom LM's weight for this base version's architecture."""
    return WHISPER_CUSTOMIZATION_WEIGHT if bundle.whisper is not None else CTC_CUSTOMIZATION_WEIGHT


def allison_split(split: str) -> list[tuple[str, Path, str]]:
    """``(prompt name, wav, transcript)`` of one split, in name order."""
    return [(name, SOUNDS / f"{name}.wav", text) for name, text in sorted(prompts().items())
            if split_of(name) == split and (SOUNDS / f"{name}.wav").exists()]


def wer_of(bundle, audio: list[torch.Tensor], references: list[str], custom: CustomLM | None,
           weight: float) -> dict:
    """WER and CER of the bundle (with the custom LM when given) over the test audio, and the real-time
    factor of recognising it (the streaming pass and the final pass, 2 torch threads)."""
    recognizer = Recognizer(bundle)
    recognizer.transcribe(audio[0], custom_lm=custom, customization_weight=weight if custom else 0.0)  # warm-up
    refs, hyps = [], []
    began = time.monotonic()
    for samples, reference in zip(audio, references):
        result = recognizer.transcribe(samples, custom_lm=custom, customization_weight=weight if custom else 0.0)
        refs.append(reference)
        hyps.append(result.transcript)
    seconds = time.monotonic() - began
    audio_s = sum(a.numel() for a in audio) / bundle.sample_rate_hz
    scored = score(refs, hyps)
    return {"wer": round(scored.wer, 4), "cer": round(scored.cer, 4), "files": len(refs),
            "rtf": round(seconds / audio_s, 4)}


def main(argv: list[str] | None = None) -> None:
    """Train, evaluate and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    p.add_argument("--cache", type=Path, default=Path("/work/data/acoustic"), help="custom models built here")
    p.add_argument("--no-pseudo", action="store_true", help="skip the pseudo-labelled custom acoustic model")
    p.add_argument("--report-only", action="store_true", help="re-render the report from OUT/acoustic.json")
    args = p.parse_args(argv)
    if args.report_only:
        data = json.loads((args.out / "acoustic.json").read_text())
        write_report(args.out, data["command"], data["base_version"], data["rows"], data["trainings"],
                     len(allison_split("train")), len(allison_split("test")), data["customization_weight"])
        return
    torch.set_num_threads(2)
    installed = resolve_model(default_models_dir(), "en-US_NarrowbandModel")
    base = load_bundle(installed.path)
    rate = base.sample_rate_hz
    train, test = allison_split("train"), allison_split("test")
    train_audio = [load_audio(wav, rate) for _, wav, _ in train]
    test_audio = [load_audio(wav, rate) for _, wav, _ in test]
    test_refs = [text for _, _, text in test]

    lm_dir = args.cache / f"lm-{base.version}"
    build_custom_lm(base, ["\n".join(text for _, _, text in train)], [], lm_dir)
    custom = CustomLM.load(lm_dir)
    config = AdaptConfig()
    weight = customization_weight(base)

    rows: list[dict] = []

    def add(system: str, bundle, custom_lm: CustomLM | None, **extra) -> None:
        rows.append({"system": system, **wer_of(bundle, test_audio, test_refs, custom_lm, weight),
                     **extra})
        print(json.dumps(rows[-1]), flush=True)

    add("base", base, None)
    add("base + custom LM", base, custom)

    trainings = {}
    am_dir = args.cache / f"am-{base.version}"
    trainings["transcripts"] = adapt_acoustic_model(base, [(a, t) for a, (_, _, t) in zip(train_audio, train)],
                                                    am_dir, config=config)
    print(json.dumps(trainings["transcripts"]), flush=True)
    adapted = load_adapted_bundle(installed.path, am_dir)
    add("custom AM", adapted, None)
    add("custom AM + custom LM", adapted, custom)

    with_manifest = args.cache / "allison-test.tsv"
    write_manifest("test", with_manifest)
    sphinx = pocketsphinx_baseline.evaluate(with_manifest)
    rows.append({"system": "pocketsphinx 5 en-us", "wer": sphinx["wer"], "cer": sphinx["cer"],
                 "files": sphinx["files"]})
    print(json.dumps(rows[-1]), flush=True)

    if not args.no_pseudo:
        began = time.monotonic()
        labels = [pseudo_label(base, a, custom_lm=custom, customization_weight=weight)
                  for a in train_audio]
        label_seconds = time.monotonic() - began
        label_wer = wer([t for _, _, t in train], labels)
        pseudo_dir = args.cache / f"am-pseudo-{base.version}"
        trainings["pseudo_labels"] = {**adapt_acoustic_model(base, list(zip(train_audio, labels)), pseudo_dir,
                                                             config=config),
                                      "label_seconds": round(label_seconds, 1), "label_wer": round(label_wer, 4)}
        print(json.dumps(trainings["pseudo_labels"]), flush=True)
        adapted_pseudo = load_adapted_bundle(installed.path, pseudo_dir)
        add("custom AM (pseudo-labels)", adapted_pseudo, None)
        add("custom AM (pseudo-labels) + custom LM", adapted_pseudo, custom)

    given = sys.argv[1:] if argv is None else argv
    command = "python -m benchmarks.acoustic" + (" " + " ".join(given) if given else "")
    write_report(args.out, command, base.version, rows, trainings, len(train), len(test), weight)


def _describe(t: dict) -> str:
    """The custom acoustic model's training config, in words."""
    c = t["config"]
    speeds = "/".join(str(x) for x in c["speeds"])
    if t["method"] == "whisper-lora":
        return (f"LoRA adapters (rank {c['rank']}, alpha {c['alpha']:g}) on "
                f"{'the decoder and ' if c['decoder'] else ''}the top {c['encoder_blocks']} encoder blocks, "
                f"{c['epochs']} epochs, lr {c['learning_rate']}, batch {c['batch_size']}, speeds {speeds}")
    return (f"{t['method']}, {c['epochs']} epochs, lr {c['learning_rate']}, batch {c['batch_size']}, speeds {speeds}, "
            f"feature augmentation {'on' if c['augment'] else 'off'}")


def write_report(out: Path, command: str, version: str, rows: list[dict], trainings: dict, n_train: int,
                 n_test: int, weight: float) -> None:
    """acoustic.md, acoustic.json and acoustic.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "acoustic.json").write_text(json.dumps({"command": command, "base_version": version,
                                                   "customization_weight": weight, "rows": rows,
                                                   "trainings": trainings}, indent=1) + "\n")
    t = trainings["transcripts"]
    lines = ["# Custom acoustic model on real speech (Allison prompts, 8 kHz)", "",
             f"Command: `{command}`. Base: `{version}`. Custom AM: `engine.acoustic.adapt_acoustic_model` with the "
             f"default config ({_describe(t)}) on the "
             f"{n_train} TRAIN-split prompts ({t['audio_minutes']:.1f} min of audio) with their transcripts. "
             "Custom LM: "
             "`engine.customlm.build_custom_lm` on the TRAIN-split prompt texts only, customization weight "
             f"{weight}. Evaluated on the {n_test} TEST-split prompts (never trained or tuned on). "
             "WER/CER counted by `engine.scoring`; RTF: seconds of recognition (streaming "
             "pass and final pass, 2 torch threads) per second of audio.", "",
             "| system | files | WER | CER | RTF |", "|---|---|---|---|---|"]
    for r in rows:
        rtf = f"{r['rtf']:.3f}" if r.get("rtf") is not None else "–"
        lines.append(f"| {r['system']} | {r['files']} | {100 * r['wer']:.1f}% | {100 * r['cer']:.1f}% | {rtf} |")
    lines += ["", "## Training (2 torch threads, this machine's 2-core CPU)", "",
              "| labels | examples used | minutes of audio | final loss | training time |", "|---|---|---|---|---|"]
    for labels, s in trainings.items():
        extra = (f" (+ {s['label_seconds']:.0f} s labelling; label WER {100 * s['label_wer']:.1f}%)"
                 if "label_seconds" in s else "")
        lines.append(f"| {labels} | {s['examples_used']} | {s['audio_minutes']:.1f} | {s['final_loss']:.3f} | "
                     f"{s['train_seconds'] / 60:.1f} min{extra} |")
    best = next(r for r in rows if r["system"] == "custom AM + custom LM")
    verdict = ("met" if best["wer"] <= TARGET_WER
               else f"not met: {100 * (best['wer'] - TARGET_WER):.1f} points above it")
    minutes = t["train_seconds"] / 60
    time_verdict = "met" if minutes <= TARGET_TRAIN_MINUTES else "not met"
    lines += ["", f"## Against the targets (custom AM + custom LM <= {100 * TARGET_WER:g}% WER, training <= "
              f"{TARGET_TRAIN_MINUTES:g} min)", "",
              f"{100 * best['wer']:.1f}% WER: target {verdict}. Training {minutes:.1f} min: {time_verdict}.", ""]
    if t["method"] == "whisper-lora":
        by_system = {r["system"]: r["wer"] for r in rows}
        losses = t.get("epoch_losses") or [t["final_loss"]]
        lines += WHISPER_NOTES.format(base=by_system["base"], am=by_system["custom AM"],
                                      lm=by_system["base + custom LM"],
                                      both=best["wer"], minutes=t["audio_minutes"], first_loss=losses[0],
                                      last_loss=losses[-1], weight=weight).splitlines()
    else:
        lines += ["Where the errors come from, and what would help, in the order we expect it to matter:", "",
                  "- The base model is trained on synthetic voices only and hears this real voice at "
                  f"{100 * rows[0]['wer']:.0f}% WER; fine-tuning on {t['audio_minutes']:.0f} minutes of it more "
                  "than halves the errors. On the held-out part of the train split (used for choosing) the "
                  "custom model still misspells words it has heard rarely (its output is letter-level CTC) and "
                  "falls apart on the long, fast prompts. More of the user's audio (an hour rather than 20 "
                  "minutes) is the first lever; on that held-out part, training all layers and speed "
                  "perturbation (more acoustic variety of the same voice) were what helped.",
                  "- A stronger base model trained on more varied speech (the recipe's open levers in "
                  "TRAINING-NOTES: more voices, subword units, a larger encoder) would start much closer.",
                  "- Decoding tuned for adapted posteriors: the beam (16) and LM weight (1.5) are the base "
                  "model's; a wider beam and a weight tuned on train-split audio for the custom AM.",
                  "- Pseudo-labels only help when the labeller is already decent: the base model's transcripts "
                  "of the train audio are mostly wrong (label WER in the training table), so a custom model "
                  "trained on them learns little. They are worth it once the base model is much better, or "
                  "in rounds (label with the adapted model, train again) starting from some transcribed audio.",
                  "- The custom LM knows only the train-split prompt texts; the test prompts are other "
                  "sentences of the same domain, so many of their n-grams are new to it."]
    (out / "acoustic.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar(range(len(rows)), [100 * r["wer"] for r in rows],
           color=["tab:blue" if "custom AM" not in r["system"] else "tab:green" for r in rows])
    for i, r in enumerate(rows):
        ax.text(i, 100 * r["wer"] + 1, f"{100 * r['wer']:.1f}", ha="center", fontsize=8)
    ax.axhline(100 * TARGET_WER, color="red", linestyle="--", linewidth=1, label="target")
    labels = [r["system"].replace(" + ", "\n+ ").replace(" (", "\n(").replace(" en-us", "\nen-us") for r in rows]
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("WER %")
    ax.set_title(f"Allison test split ({rows[0]['files']} prompts), {version}")
    ax.legend(loc="upper center")
    fig.tight_layout()
    fig.savefig(out / "acoustic.png", dpi=100)


if __name__ == "__main__":
    main()
