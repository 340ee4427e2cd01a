"""The lift of a custom language model on IVR-domain audio, with a report and a plot.

A custom LM (:mod:`engine.customlm`) is built for the newest narrowband and the
newest broadband base model from the TRAIN split of the Allison prompt texts
(asterisk-core-sounds-en; see :mod:`engine.recipe.allison`). It is evaluated on:

- ``allison-test``: the test-split Allison recordings (real speech, 8 kHz) -> narrowband;
- ``synth-test-*``: test-split prompt texts spoken at 16 kHz by synthesisers that never
  trained the base models (espeak-ng Scottish, flite awb, festival HTS slt) -> broadband;
- ``synth-seen-*``: the same texts spoken by two voices the base models were trained on
  (espeak-ng en-us, flite kal; the texts are new to them) -> broadband, to show the lift
  where the acoustic model is on firmer ground.

WER (:mod:`engine.scoring`) of the live finals without and
with the custom LM at several customization weights (see :func:`evaluate`). The default
weight is picked on TRAIN-split audio only (the held-out part of the Allison train recordings,
:func:`benchmarks.acoustic_heldout.held_out`, for narrowband; train-split texts spoken by the
held-out espeak-ng and flite voices for broadband; never the HTS voice, which is for evaluation
only), never on the test sets, with a custom LM of the other train-split texts: as on the test
sets, the sentences said are not in the custom LM (picking with them in it favoured weights that
suit scripted audio: 0.15 against 0.3-0.5, ``benchmarks/reports/customlm-fusion.md``). Also reported: the finals'
real-time factor with and without the custom LM. Synthetic audio is cached outside git
(``--cache``).

Usage::

    python -m benchmarks.customlm --out benchmarks/reports
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import soundfile
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from engine.audio import load_audio, resample  # noqa: E402
from engine import finalpass  # noqa: E402
from engine.bundle import load_bundle  # noqa: E402
from engine.catalog import default_models_dir  # noqa: E402
from engine.bundle import resolve_model  # noqa: E402
from engine.customlm import CustomLM, build_custom_lm  # noqa: E402
from engine.recipe.allison import SOUNDS, prompts, split_of  # noqa: E402
from engine.recipe.voices import HELD_OUT, Voice, synthesize  # noqa: E402
from benchmarks.acoustic_heldout import held_out  # noqa: E402
from engine.recognizer import Recognizer  # noqa: E402
from engine.scoring import wer  # noqa: E402

CANDIDATE_WEIGHTS = (0.1, 0.15, 0.2, 0.3, 0.5, 0.8)
REPORTED_WEIGHTS = (0.3, 0.5, 0.8)
#: a weight too small to move anything: on a Whisper-based version, what the rescoring beam gives alone
BEAM_ONLY = 1e-6
#: training voices speaking the (unseen) test-split texts
SEEN_VOICES = {"espeak-en-us": ("espeak", "en-us"), "flite-kal": ("flite", "kal")}


def synthetic_set(texts: list[tuple[str, str]], cache: Path,
                  voices: dict[str, tuple[str, str]]) -> list[tuple[Path, str]]:
    """Speak each ``(name, text)`` with each held-out voice at 16 kHz (cached); return ``(wav, text)``."""
    out = []
    for label, (engine, name) in voices.items():
        folder = cache / label
        folder.mkdir(parents=True, exist_ok=True)
        for prompt, text in texts:
            wav = folder / (prompt.replace("/", "__") + ".wav")
            if not wav.exists():
                samples, rate = synthesize(Voice(engine, name), text)
                soundfile.write(wav, resample(samples, rate, 16000).numpy(), 16000)
            out.append((wav, text))
    return out


def evaluate(bundle, custom: CustomLM, files: list[tuple[Path, str]], weights: tuple[float, ...]) -> dict:
    """WER of the version's own finals and of the finals with the custom LM at each weight over ``files``,
    through :meth:`engine.recognizer.Recognizer.transcribe` (what ``voxgate eval`` and live streams run:
    on a Whisper-based version the streaming pass, endpointing and Whisper's decoder, whose N-best
    the custom LM rescores; on a CTC version the beam search with the LM mixture).

    Returns:
        weight (0.0: no custom LM) -> ``{"wer", "rtf"}``.
    """
    recognizer = Recognizer(bundle)
    refs: list[str] = []
    hyps: dict[float, list[str]] = {w: [] for w in (0.0, *weights)}
    seconds = {w: 0.0 for w in hyps}
    audio_s = 0.0
    for wav, text in files:
        samples = load_audio(wav, bundle.sample_rate_hz)
        audio_s += samples.numel() / bundle.sample_rate_hz
        refs.append(text)
        for w in hyps:
            out = recognizer.transcribe(samples, custom_lm=custom if w > 0 else None, customization_weight=w)
            hyps[w].append(out.transcript)
            seconds[w] += out.processing_seconds
    return {w: {"wer": wer(refs, h), "rtf": seconds[w] / audio_s} for w, h in hyps.items()}


def main(argv: list[str] | None = None) -> None:
    """Build the custom LMs, evaluate, write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    p.add_argument("--cache", type=Path, default=Path("/work/data/customlm"), help="synthetic audio and built LMs")
    p.add_argument("--synth-texts", type=int, default=40, help="test-split texts per synthetic voice")
    p.add_argument("--tune-files", type=int, default=40, help="train-split files for picking the weight")
    p.add_argument("--bands", default="narrowband,broadband", help="which base models to measure")
    p.add_argument("--fusion", action="store_true",
                   help="Whisper-based versions: shallow fusion of the custom LM into the decoder's beam "
                        "(server: [recognition] custom_lm_fusion) instead of N-best rescoring")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.fusion:
        finalpass.WHISPER_FUSION = True
    texts = prompts()
    train_texts = [t for n, t in sorted(texts.items()) if split_of(n) == "train"]
    test_prompts = [(n, t) for n, t in sorted(texts.items()) if split_of(n) == "test"]
    train_prompts = [(n, t) for n, t in sorted(texts.items()) if split_of(n) == "train"]
    allison = {s: [(SOUNDS / f"{n}.wav", t) for n, t in sorted(texts.items())
                   if split_of(n) == s and (SOUNDS / f"{n}.wav").exists()] for s in ("train", "test")}
    synth_voices = dict(HELD_OUT)
    # festival's HTS voice is for evaluation only: never tuned on, not even its train-split texts
    tune_voices = {label: voice for label, voice in HELD_OUT.items() if "hts" not in label}
    models = default_models_dir()
    bands = {
        # tuned on the held-out part of the TRAIN split (benchmarks.acoustic_heldout), as the test set is
        "narrowband": (resolve_model(models, "en-US_NarrowbandModel").path,
                       [(wav, t) for wav, t in allison["train"] if held_out(wav.stem)], {"allison-test": allison["test"]}),
        "broadband": (resolve_model(models, "en-US_BroadbandModel").path,
                      synthetic_set(train_prompts[: args.tune_files // len(tune_voices)], args.cache / "synth-train",
                                    tune_voices),
                      {**{f"synth-test-{label}": synthetic_set(test_prompts[: args.synth_texts],
                                                               args.cache / "synth-test", {label: voice})
                          for label, voice in synth_voices.items()},
                       **{f"synth-seen-{label}": synthetic_set(test_prompts[: args.synth_texts],
                                                              args.cache / "synth-seen", {label: voice})
                          for label, voice in SEEN_VOICES.items()}}),
    }
    unknown = set(args.bands.split(",")) - set(bands)
    if unknown:
        p.error(f"unknown band(s) {sorted(unknown)}: expected narrowband and/or broadband")
    rows, speed, picked, summaries = [], {}, {}, {}
    for band, (path, tune_files, test_sets) in bands.items():
        if band not in args.bands.split(","):
            continue
        bundle = load_bundle(path)
        lm_dir = args.cache / f"lm-{bundle.version}"
        summaries[bundle.version] = build_custom_lm(bundle, ["\n".join(train_texts)], [], lm_dir)
        custom = CustomLM.load(lm_dir)
        # the weight is tuned with a custom LM that lacks the tuning audio's own sentences, as the
        # test sets' sentences are lacking from the custom LM they are measured with
        tuning_texts = {t for _, t in tune_files}
        tune_lm_dir = args.cache / f"lm-tune-{bundle.version}"
        build_custom_lm(bundle, ["\n".join(t for t in train_texts if t not in tuning_texts)], [], tune_lm_dir)
        tune = {w: r["wer"] for w, r in evaluate(bundle, CustomLM.load(tune_lm_dir), tune_files,
                                                 CANDIDATE_WEIGHTS).items()}
        best = min(CANDIDATE_WEIGHTS, key=lambda w: tune[w])
        picked[bundle.version] = {"weight": best, "train_split_wer": {str(w): v for w, v in tune.items()},
                                  "train_files": len(tune_files)}
        print(band, "train-split WER by weight:", {w: round(v, 3) for w, v in tune.items()}, "picked", best, flush=True)
        weights = tuple(sorted({*REPORTED_WEIGHTS, best, *((BEAM_ONLY,) if bundle.whisper is not None else ())}))
        for name, files in test_sets.items():
            result = evaluate(bundle, custom, files, weights)
            wer = {w: r["wer"] for w, r in result.items()}
            base = wer[0.0]
            speed.setdefault(bundle.version, {"set": name, "base_rtf": result[0.0]["rtf"],
                                              "custom_rtf": result[best]["rtf"], "weight": best})
            rows.append({"set": name, "model": bundle.version, "files": len(files), "weight": None, "wer": base,
                         "relative_reduction": 0.0})
            for w in weights:
                rows.append({"set": name, "model": bundle.version, "files": len(files), "weight": w, "wer": wer[w],
                             "relative_reduction": (base - wer[w]) / base if base else 0.0, "picked": w == best})
            print(name, {w: round(v, 3) for w, v in wer.items()}, flush=True)
    write_report(args.out, rows, speed, picked, summaries, sys.argv[1:] if argv is None else argv)


def write_report(out: Path, rows: list[dict], speed: dict, picked: dict, summaries: dict,
                 argv: list[str] | None) -> None:
    """customlm.md, customlm.json and customlm.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.customlm" + (" " + " ".join(argv) if argv else " --out benchmarks/reports")
    (out / "customlm.json").write_text(json.dumps({"command": command, "rows": rows, "speed": speed,
                                                   "picked": picked, "custom_lms": summaries}, indent=1) + "\n")
    how = ("is fused into the Whisper decoder's beam search (shallow fusion, `--fusion`; beam 4; score "
           "`log P_whisper + w log P_custom`, each word scored as the next one starts)"
           if argv and "--fusion" in argv else
           "rescores the Whisper decoder's N-best (beam 4; score `log P_whisper + w log P_custom`, per token)")
    lines = ["# Custom language model lift on IVR audio", "",
             f"Command: `{command}`. Custom LM: 3-gram KN on the train split of the Allison prompt texts "
             "(asterisk-core-sounds-en). Live finals (`Recognizer.transcribe`, as `voxgate eval`): on a "
             f"Whisper-based version the custom LM {how}, on a CTC version it is mixed with the base LM in the "
             "beam search (`P = (1-w) P_base + w P_custom`). Weight 1e-06 is the rescoring beam with no "
             "LM to speak of: the beam's own share of the lift. WER counted by "
             "`engine.scoring`. The picked weight (*) was chosen on train-split audio only.", "",
             "| set | model | files | customization weight | WER | relative reduction |", "|---|---|---|---|---|---|"]
    for r in rows:
        weight = "base only" if r["weight"] is None else (
            "1e-06 (beam only)" if r["weight"] == BEAM_ONLY else f"{r['weight']}{' *' if r.get('picked') else ''}")
        lines.append(f"| {r['set']} | {r['model']} | {r['files']} | {weight} | {100 * r['wer']:.1f}% | "
                     f"{100 * r['relative_reduction']:.1f}% |")
    lines += ["", "## Against the target (>= 50% relative WER reduction)", ""]
    for r in rows:
        if r.get("picked"):
            met = "met" if r["relative_reduction"] >= 0.5 else (
                f"not met: {100 * (0.5 - r['relative_reduction']):.1f} points short")
            lines.append(f"- {r['set']} ({r['model']}, picked weight {r['weight']}): "
                         f"{100 * r['relative_reduction']:.1f}% relative reduction, target {met}.")
    for version, p in picked.items():
        best = p["train_split_wer"][str(p["weight"])]
        lines.append(f"- Tuning for {version}: on the train-split audio, with a custom LM of the other train-split "
                     f"texts, WER goes from {100 * p['train_split_wer']['0.0']:.1f}% to "
                     f"{100 * best:.1f}% at the picked weight.")
    lines += ["", "## Weight picked on the train split", "",
              "| model | files | WER by weight (0 = base) | picked |", "|---|---|---|---|"]
    for version, p in picked.items():
        wers = ", ".join(f"{w}: {100 * v:.1f}%" for w, v in p["train_split_wer"].items())
        lines.append(f"| {version} | {p['train_files']} | {wers} | {p['weight']} |")
    lines += ["", "## Real-time factor of the finals (one thread)", "",
              "| model | set | without custom LM | with it (weight) |", "|---|---|---|---|"]
    for version, sp in speed.items():
        lines.append(f"| {version} | {sp['set']} | {sp['base_rtf']:.3f} | {sp['custom_rtf']:.3f} ({sp['weight']}) |")
    lines += ["", "## Custom LMs", ""] + [f"- {v}: {json.dumps(s)}" for v, s in summaries.items()]
    (out / "customlm.md").write_text("\n".join(lines) + "\n")
    sets = list(dict.fromkeys(r["set"] for r in rows))
    variants = list(dict.fromkeys("base" if r["weight"] is None else f"w={r['weight']}" for r in rows))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(variants)
    for j, variant in enumerate(variants):
        values = []
        for s in sets:
            match = [r["wer"] for r in rows if r["set"] == s
                     and ("base" if r["weight"] is None else f"w={r['weight']}") == variant]
            values.append(100 * match[0] if match else 0.0)
        ax.bar([i + j * width for i in range(len(sets))], values, width, label=variant)
    ax.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(sets))], sets, rotation=10)
    ax.set_ylabel("WER %")
    ax.set_title("Base LM vs base + custom LM (IVR prompts)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "customlm.png", dpi=100)


if __name__ == "__main__":
    main()
