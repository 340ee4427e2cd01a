"""The training jobs themselves, run by name in a worker process (:mod:`server.runtime.subprocess_job`).

The server process never imports this module — it names its functions to
:func:`~server.runtime.subprocess_job.run_job` (see :mod:`server.runtime.training`) — so the
training code they pull in (:mod:`engine.acoustic` and the base recipe's loss it fine-tunes with)
is loaded only in the worker.
"""

from __future__ import annotations

from pathlib import Path

from engine.acoustic import adapt_acoustic_model, pseudo_label
from engine.audio import load_audio
from engine.bundle import load_bundle
from engine.customlm import CustomLM, CustomWord, build_custom_lm
from protocol.audio import parse_content_type


def train_language(bundle_path: str, corpus_paths: list[str], words: list[tuple], out_dir: str, *, progress) -> dict:
    """In the worker process: build a custom LM artifact."""
    bundle = load_bundle(Path(bundle_path))
    texts = [Path(p).read_text(encoding="utf-8") for p in corpus_paths]
    custom_words = [CustomWord(word, tuple(sounds_like), display_as) for word, sounds_like, display_as in words]
    return build_custom_lm(bundle, texts, custom_words, Path(out_dir), progress=progress)


def train_acoustic(bundle_path: str, audio: list[tuple], helper: tuple | None, out_dir: str,
                   default_weight: float, *, progress) -> dict:
    """In the worker process: fine-tune a base version on the audio (transcripts given, or made by the base
    model with the helper language model)."""
    bundle = load_bundle(Path(bundle_path))
    custom_lm = CustomLM.load(Path(helper[0])) if helper else None
    weight = helper[1] if helper and helper[1] is not None else default_weight
    examples, labelled = [], 0
    for i, (path, content_type, transcript) in enumerate(audio):
        samples = load_audio(Path(path), bundle.sample_rate_hz, parse_content_type(content_type))
        if not transcript:
            transcript = pseudo_label(bundle, samples, custom_lm=custom_lm, customization_weight=weight)
            labelled += 1
        examples.append((samples, transcript))
        progress(0.2 * (i + 1) / len(audio))  # reading and labelling: the first fifth
    summary = adapt_acoustic_model(bundle, examples, Path(out_dir), progress=lambda f: progress(0.2 + 0.8 * f))
    return {**summary, "pseudo_labelled": labelled}
