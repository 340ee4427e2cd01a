"""Custom acoustic models: a base version's network fine-tuned on a user's audio (on the Whisper-based
versions an adapter of the final pass: the last section).

:func:`adapt_acoustic_model` fine-tunes a copy of a bundle's :class:`~engine.model.StreamingCTC`
with the CTC loss of the base recipe (:mod:`engine.recipe.train`) on ``(samples, transcript)``
pairs, and writes an adapted folder::

    adapted.pt        the changed tensors: ``replace`` (name -> tensor) and ``low_rank``
                      (weight name -> ``a``, ``b`` with ``delta = b @ a``)
    adaptation.json   base version, method, config, counts, minutes of audio, losses

:func:`engine.adapted.load_adapted_bundle` puts those tensors into the base bundle (same tokenizer,
lexicon, LM and beam decoder), refusing a folder made from another base version.
:func:`pseudo_label` transcribes audio that came without a transcript with the base
model (and a custom LM when there is one).

Methods (``AdaptConfig.method``):

- ``full``: every weight of the network (the feature statistics stay the base's).
- ``top``: the last ``top_blocks`` residual blocks, the final norm and the CTC head.
- ``lora``: low-rank deltas (rank ``lora_rank``) on every linear layer; saved as the
  factors, a few hundred kilobytes, and merged into the weights when loaded.

Why these defaults (``full``, 30 epochs, learning rate 1e-3, batch 8, speed perturbation
0.9/1.0/1.1, no feature augmentation): measured on the Allison prompts (8 kHz real speech,
one speaker; :mod:`engine.recipe.allison`) with ``en-US_NarrowbandModel.v2026-11-01`` on the
TRAIN split only: its prompts whose name's sha1 hex digest has 0-3 as its second-to-last
digit (127 prompts) held out for choosing, the other 333 (13.9 min of audio) trained on; the
test split was never looked at. WER on the held-out part (greedy / beam with the base LM /
beam with a custom LM of the 333 training texts at weight 0.9), training seconds on the
2-core CPU (2 torch threads, shared with other work):

==========================================================  =====  =====  =====  ======
config                                                      greedy beam   +LM    seconds
==========================================================  =====  =====  =====  ======
base model, no adaptation                                   104.2  92.0   86.7   --
top 2 blocks + head, 20 epochs, lr 1e-3, augmentation       90.8   77.1   67.5   63
lora rank 16, 20 epochs, lr 2e-3, augmentation              87.4   72.9   63.4   267
full, 20 epochs, lr 5e-4, augmentation                      83.1   69.3   58.2   131
full, 20 epochs, lr 1e-3, augmentation                      79.2   66.8   57.1   114
full, 40 epochs, lr 2e-3, augmentation                      76.2   66.7   59.1   253
full, 20 epochs, lr 1e-3, no augmentation                   76.5   62.8   54.6   106
full, 20 epochs, lr 2e-3, no augmentation                   72.1   60.7   54.0   140
full, 20 epochs, lr 1e-3, no augmentation, speeds           71.8   62.6   53.9   119
full, 20 epochs, lr 2e-3, no augmentation, speeds           67.9   59.2   52.4   124
**full, 30 epochs, lr 1e-3, no augmentation, speeds**       69.9   60.5   51.5   191
full, 30 epochs, lr 1e-3, no augmentation, 7 speeds         68.7   57.6   52.1   205
full, 40 epochs, lr 1e-3, no augmentation, speeds           67.0   59.1   50.8   350
==========================================================  =====  =====  =====  ======

So: the base model (trained on synthetic voices only) is far from a real voice, and only
training every layer moves it far enough: the top blocks alone and low-rank deltas learn
too little (and LoRA's parametrised weights train 2.5x slower on a CPU). The recipe's
feature augmentation (frequency warp, tilt, SpecAugment) hurts here: it is built to hide
a voice's fingerprint, while a custom model should learn exactly one voice and channel.
Speed perturbation (0.9/1.0/1.1; "7 speeds": 0.85 to 1.15 in steps of 0.05), which keeps
the voice, helps a little. The last five rows are within the noise of 127 prompts; the
chosen one was best with the custom LM, the case the custom acoustic model is meant for,
when it was chosen; 40 epochs, measured after the benchmark was run, gained 0.7 points for
almost twice the training time, not enough to switch. On the held-out part the custom
LM's weight matters little for the adapted model (0.3: 53.7, 0.5: 52.1, 0.7: 52.9,
0.9: 51.5, 1.0: 51.2). On the whole train split (19.8 min of audio) the chosen config
trains in 5.2 minutes; its result on the test split is in ``benchmarks/reports/acoustic.md``.

Whisper-based versions (release v2026-12-01): the finals come from Whisper's full-context
encoder and decoder, so that is what a custom acoustic model adapts: ``adapted.pt`` holds LoRA
factors (:mod:`engine.whisper.lora`, method ``whisper-lora``) on the decoder's linear layers and
those of the top ``encoder_blocks`` encoder blocks, trained with the decoder's teacher-forced
cross-entropy (:mod:`engine.whisper.adapt`, :class:`~engine.whisper.adapt.WhisperAdaptConfig`);
the streaming CTC pass (interim results, word times) stays the base's. Loaded, the factors apply
per call on the base's own network (:func:`engine.whisper.lora.adapted`), so a server holds one
network per version however many custom models it serves. The defaults (rank 4, alpha 16, the
decoder and the top 2 encoder blocks, 3 epochs, lr 3e-4, batch 8, no speed perturbation) were
chosen the same way, on ``en-US_NarrowbandModel.v2026-12-01``: 326 TRAIN-split prompts trained
on, 124 held out (second-to-last digest digit 0-3; prompts over 25 s and the "seconds of
silence" ones left out), the test split never looked at; held-out WER of the int8 greedy final
pass as served, training seconds on 2 torch threads (the first rows shared the CPU with tests):

================================================================  =======  =======
config                                                            WER      seconds
================================================================  =======  =======
base version, no adapter                                          8.4      --
rank 8, 2 epochs, lr 1e-3                                         4.5      314
rank 8, top 4 encoder blocks, no decoder, 3 epochs, lr 1e-3       5.0      459
rank 8, 1 epoch at speeds 0.9/1.0/1.1, lr 1e-3                    4.5      308
rank 8, 3 epochs, lr 3e-4                                         4.2      241
rank 4, 3 epochs, lr 1e-4                                         6.2      251
rank 4, 2 epochs, lr 3e-4                                         4.9      170
**rank 4, 3 epochs, lr 3e-4**                                     **3.7**  236
================================================================  =======  =======

An earlier run (rank 8, 4 epochs, lr 1e-3) drove the training loss from 0.47 to 0.03: it
memorises 14 minutes of one voice within a few epochs, so few epochs at a modest learning rate
win; adapting the decoder matters more than more encoder blocks; speed perturbation gave
nothing for its 3x the examples. The differences below a point are within the noise of 124
prompts. Audio longer than Whisper's 30 s window cannot be lined up with its whole transcript
and is skipped (counted as ``audio_too_long``). The table decoded each whole prompt with the final
pass directly; ``python -m benchmarks.acoustic_heldout --max-seconds 25 --skip-silence --configs
'[{...}, ...]'`` runs the same split through the live route (endpointed utterances, as
``voxgate eval``), and without those two options shows where the remaining errors are.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchaudio.functional as AF
from torch import nn
from torch.nn.utils import parametrize

from engine.adapted import META_FILE, WEIGHTS_FILE, WHISPER_METHOD
from engine.bundle import ModelBundle
from engine.customlm import CustomLM, custom_decoder
from engine.decoding import greedy_batch, tokens_to_words
from engine.features import log_mel
from engine.files import swap_in
from engine.finalpass import FinalPassKind, choose_final_pass
from engine.recipe.train import augment_features, ctc_batch_loss
from engine.recognizer import pad_to_output_frames
from engine.text import normalize_transcript
from engine.whisper.adapt import WhisperAdaptConfig, train_adapter
from engine.whisper.model import shared_pretrained

METHODS = ("full", "top", "lora")


@dataclass(frozen=True)
class AdaptConfig:
    """How :func:`adapt_acoustic_model` fine-tunes.

    Attributes:
        method: ``full``, ``top`` or ``lora`` (see the module docstring).
        epochs: passes over the examples.
        learning_rate: peak AdamW learning rate (linear warm-up, cosine decay to 5%).
        batch_size: utterances per step (length-sorted buckets, shuffled).
        seed: seeds the shuffling, dropout and augmentation.
        augment: feature-domain augmentation of the base recipe (frequency warp, spectral
            tilt, gain, SpecAugment masks).
        speeds: speed perturbation: each epoch takes every utterance at one of these speeds,
            drawn at random (``(1.0,)``: none).
        weight_decay: AdamW weight decay (towards zero; the deltas of ``lora`` start at zero).
        top_blocks: blocks trained by ``top``.
        lora_rank: rank of each delta of ``lora``.
        threads: torch threads while training.
        dropout: dropout inside the blocks while fine-tuning. The base recipe trains without it;
            the method above was chosen with 0.1 in effect (the base models of the time carried it),
            and 20 minutes of one voice are few enough to need it.
    """

    method: str = "full"
    epochs: int = 30
    learning_rate: float = 1e-3
    batch_size: int = 8
    seed: int = 1
    augment: bool = False
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    weight_decay: float = 1e-2
    top_blocks: int = 2
    lora_rank: int = 16
    threads: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "speeds", tuple(self.speeds))  # from a list in JSON, too
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.speeds or not all(0.5 <= f <= 2.0 for f in self.speeds):
            raise ValueError(f"speeds must be factors between 0.5 and 2, got {self.speeds!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0 or self.lora_rank < 1:
            raise ValueError("epochs, batch_size, learning_rate and lora_rank must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


class _LowRankDelta(nn.Module):
    """Parametrisation ``W + b @ a`` of a linear layer's weight; ``b`` starts at zero."""

    def __init__(self, weight: torch.Tensor, rank: int, generator: torch.Generator) -> None:
        super().__init__()
        out_features, in_features = weight.shape
        self.a = nn.Parameter(torch.randn(rank, in_features, generator=generator) / math.sqrt(in_features))
        self.b = nn.Parameter(torch.zeros(out_features, rank))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.b @ self.a


@dataclass
class _Example:
    features: list[torch.Tensor]  # per speed, (T, D) with T a multiple of the model's frames per output
    tokens: list[int]
    seconds: float  # of the audio as given
    text: str  # normalised


def _speed(samples: torch.Tensor, factor: float, rate_hz: int) -> torch.Tensor:
    """Play ``factor`` times faster (tempo and pitch together, as Kaldi's speed perturbation)."""
    if factor == 1.0:
        return samples
    # Rates on a 100 Hz grid keep the resampling kernel small.
    return AF.resample(samples, int(round(rate_hz * factor / 100)) * 100, rate_hz)


def _prepare(bundle: ModelBundle, examples: list[tuple[torch.Tensor, str]],
             speeds: tuple[float, ...] = (1.0,)) -> tuple[list[_Example], dict]:
    """Features (one set per speed) and token ids of the usable examples, and counts of the rest by reason."""
    k = bundle.model.config.frames_per_output
    usable, skipped = [], {"empty_transcript": 0, "audio_too_short": 0, "audio_too_long": 0}
    # Whisper's encoder holds 30 s: a longer example cannot be lined up with its whole transcript
    longest = None if bundle.whisper is None else 2 * bundle.whisper.whisper.dims.n_audio_ctx * bundle.features.hop_length
    for samples, text in examples:
        samples = torch.as_tensor(samples, dtype=torch.float32).reshape(-1)
        if longest is not None and samples.numel() / min(speeds) > longest:
            skipped["audio_too_long"] += 1
            continue
        words = normalize_transcript(text or "")
        tokens = bundle.tokenizer.encode(words) if words else []
        if not tokens:
            skipped["empty_transcript"] += 1
            continue
        feats = [log_mel(_speed(samples, f, bundle.sample_rate_hz), bundle.features) for f in speeds]
        feats = [x[: x.shape[0] // k * k] for x in feats]
        # CTC needs an output frame per token, plus a blank between repeated tokens (an adapter is
        # trained through Whisper's decoder, which has no such bound)
        repeats = sum(a == b for a, b in zip(tokens, tokens[1:]))
        if longest is None and min(x.shape[0] for x in feats) // k < len(tokens) + repeats:
            skipped["audio_too_short"] += 1
            continue
        usable.append(_Example(feats, tokens, samples.numel() / bundle.sample_rate_hz, words))
    return usable, skipped


def _trainable(model: nn.Module, config: AdaptConfig, generator: torch.Generator) -> list[nn.Parameter]:
    """Set up ``model`` for the method; return the parameters to train."""
    for p in model.parameters():
        p.requires_grad_(False)
    if config.method == "full":
        params = list(model.parameters())
    elif config.method == "top":
        modules = [*model.blocks[-config.top_blocks:], model.norm, model.head]
        params = [p for m in modules for p in m.parameters()]
    else:
        params = []
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear):
                parametrize.register_parametrization(module, "weight",
                                                     _LowRankDelta(module.weight, config.lora_rank, generator))
                delta = module.parametrizations.weight[0]
                params += [delta.a, delta.b]
    for p in params:
        p.requires_grad_(True)
    return params


def _changed_tensors(model: nn.Module, config: AdaptConfig) -> dict:
    """What :func:`engine.adapted.load_adapted_bundle` needs to rebuild the adapted weights from the base's."""
    if config.method == "lora":
        low_rank = {}
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and parametrize.is_parametrized(module, "weight"):
                delta = module.parametrizations.weight[0]
                low_rank[f"{name}.weight"] = {"a": delta.a.detach().clone(), "b": delta.b.detach().clone()}
        return {"replace": {}, "low_rank": low_rank}
    replace = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    return {"replace": replace, "low_rank": {}}


def _batches(examples: list[_Example], batch_size: int, rng: random.Random) -> list[list[tuple[int, int]]]:
    """``(example, speed)`` pairs, a speed drawn per example, in length-sorted buckets of ``batch_size``
    shuffled."""
    picks = [(i, rng.randrange(len(e.features))) for i, e in enumerate(examples)]
    picks.sort(key=lambda p: (examples[p[0]].features[p[1]].shape[0], p))
    out = [picks[i : i + batch_size] for i in range(0, len(picks), batch_size)]
    rng.shuffle(out)
    return out


def _collate(examples: list[_Example], picks: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor,
                                                                             list[list[int]]]:
    """``(B, T, D)`` padded features, ``(B,)`` lengths and the token lists."""
    chosen = [examples[i].features[v] for i, v in picks]
    lengths = [x.shape[0] for x in chosen]
    feats = torch.zeros(len(chosen), max(lengths), chosen[0].shape[1])
    for row, x in enumerate(chosen):
        feats[row, : x.shape[0]] = x
    return feats, torch.tensor(lengths), [examples[i].tokens for i, _ in picks]


def adapt_acoustic_model(bundle: ModelBundle, examples: list[tuple[torch.Tensor, str]], out_dir: Path, *,
                         config: AdaptConfig = AdaptConfig(), whisper_config: WhisperAdaptConfig = WhisperAdaptConfig(),
                         progress: Callable[[float], None] | None = None) -> dict:
    """Fine-tune the bundle's network on the user's audio and write the adapted folder atomically.

    The bundle itself is not changed (a copy of its network is trained). Runs are
    deterministic for a given seed, examples and thread count.

    Args:
        bundle: the base version.
        examples: ``(samples, transcript)`` pairs: float32 mono at the bundle's rate and the
            text spoken (normalised like the references, :func:`engine.text.normalize_transcript`).
        out_dir: the adapted folder; built in a temporary sibling and renamed into place, so a
            failed run leaves a previous folder as it was.
        config: the method and its hyper-parameters (the older, convolutional versions).
        whisper_config: the adapter's (Whisper-based versions: :mod:`engine.whisper.adapt`; ``threads``
            comes from ``config``).
        progress: called with the fraction done (0-1) after every step.

    Returns:
        The summary also written to ``adaptation.json``: base version, method, config,
        examples used and skipped, minutes of audio, per-epoch and final loss, seconds.

    Raises:
        ValueError: no examples, or none usable (transcripts that normalise to nothing, audio
            too short for its transcript).
    """
    if not examples:
        raise ValueError("no examples to adapt on: give at least one (audio, transcript) pair")
    began = time.monotonic()
    usable, skipped = _prepare(bundle, examples, whisper_config.speeds if bundle.whisper is not None else config.speeds)
    if not usable:
        raise ValueError(f"none of the {len(examples)} examples is usable: {skipped['empty_transcript']} have a "
                         f"transcript with no words after normalisation, {skipped['audio_too_short']} have audio "
                         f"too short for their transcript, {skipped['audio_too_long']} are longer than the 30 s "
                         "that Whisper's encoder holds")
    minutes = sum(e.seconds for e in usable) / 60
    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if bundle.whisper is not None:
                changed, losses = _train_whisper(bundle, usable, whisper_config, progress)
            else:
                changed, losses = _train(bundle, usable, config, progress)
    finally:
        torch.set_num_threads(threads)
    if bundle.whisper is not None:
        method, config_dict = WHISPER_METHOD, {**dataclasses.asdict(whisper_config),
                                               "speeds": list(whisper_config.speeds)}
        n_changed = len(changed["factors"])
    else:
        method, config_dict = config.method, {**dataclasses.asdict(config), "speeds": list(config.speeds)}
        n_changed = len(changed["replace"]) + len(changed["low_rank"])
    summary = {
        "base_version": bundle.version, "method": method, "config": config_dict,
        "examples": len(examples), "examples_used": len(usable), "skipped": skipped,
        "audio_minutes": round(minutes, 3), "epoch_losses": [round(x, 4) for x in losses],
        "final_loss": round(losses[-1], 4), "train_seconds": round(time.monotonic() - began, 1),
        "changed_tensors": n_changed,
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        torch.save(changed, tmp / WEIGHTS_FILE)
        (tmp / META_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        tmp.chmod(0o755)
        swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress is not None:
        progress(1.0)
    return summary


def _train_whisper(bundle: ModelBundle, examples: list[_Example], config: WhisperAdaptConfig,
                   progress: Callable[[float], None] | None) -> tuple[dict, list[float]]:
    """A Whisper-based version: an adapter for its final pass (every speed of an example is one
    more training utterance); returns what :func:`engine.adapted.load_adapter` reads."""
    pretrained = shared_pretrained(bundle.model.config.pretrained)
    pairs = [(feats, e.text) for e in examples for feats in e.features]
    config = dataclasses.replace(config, min_pad_s=bundle.whisper.options.min_pad_s)
    adapter, losses = train_adapter(pretrained, bundle.whisper.text, pairs, config, progress)
    return adapter.to_dict(), losses


def _train(bundle: ModelBundle, examples: list[_Example], config: AdaptConfig,
           progress: Callable[[float], None] | None) -> tuple[dict, list[float]]:
    """The fine-tuning loop; returns the changed tensors and the mean loss of every epoch."""
    model = copy.deepcopy(bundle.model).cpu()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = config.dropout
    gen = torch.Generator().manual_seed(config.seed)
    params = _trainable(model, config, gen)
    rng = random.Random(config.seed)
    opt = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))))
    model.train()
    losses, done = [], 0
    for _ in range(config.epochs):
        epoch_loss, count = 0.0, 0
        for indices in _batches(examples, config.batch_size, rng):
            feats, lengths, targets = _collate(examples, indices)
            if config.augment:
                feats = augment_features(feats, lengths, gen)
            log_probs, out_lengths = model(feats, lengths)
            loss = ctc_batch_loss(log_probs, out_lengths, targets)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            epoch_loss, count, done = epoch_loss + float(loss.detach()), count + 1, done + 1
            if progress is not None:
                progress(0.99 * done / total)
        losses.append(epoch_loss / count)
    model.eval()
    return _changed_tensors(model, config), losses


@torch.inference_mode()
def pseudo_label(bundle: ModelBundle, samples: torch.Tensor, *, custom_lm: CustomLM | None = None,
                 customization_weight: float = 0.3) -> str:
    """A transcript of audio that arrived without one, from the base model (and a custom LM).

    Args:
        bundle: the base version.
        samples: float32 mono at the bundle's rate.
        custom_lm: a :class:`~engine.customlm.CustomLM` mixed into the beam search.
        customization_weight: its share in [0, 1].

    Returns:
        The normalised transcript, possibly empty (such an example is skipped by
        :func:`adapt_acoustic_model`).
    """
    if bundle.whisper is not None:
        # the final pass's own decoder (with the custom LM as it applies it to finals), not the weak streaming CTC
        raw = log_mel(torch.as_tensor(samples, dtype=torch.float32).reshape(-1), bundle.features)
        fp = choose_final_pass(bundle, FinalPassKind.WHISPER, custom_lm=custom_lm,
                               customization_weight=customization_weight)
        return bundle.whisper.transcribe(raw, fp.whisper_prompt, fp.rescorer(), beam_size=fp.whisper_beam,
                                         fuse=fp.whisper_fusion).text
    feats = pad_to_output_frames(log_mel(torch.as_tensor(samples, dtype=torch.float32).reshape(-1), bundle.features),
                                 bundle.model.config.frames_per_output)
    if not feats.shape[0]:
        return ""
    device = next(bundle.model.parameters()).device
    log_probs, lengths = bundle.model(feats[None].to(device), torch.tensor([feats.shape[0]], device=device))
    lp = log_probs[0, : int(lengths[0])].cpu()
    if bundle.beam is None:
        tokens = greedy_batch(lp[None], torch.tensor([lp.shape[0]]))[0]
        words = tokens_to_words(tokens, bundle.tokenizer, bundle.frame_seconds)
    elif custom_lm is not None and customization_weight > 0:
        words = custom_decoder(bundle, custom_lm, customization_weight).decode(lp)
    else:
        words = tokens_to_words(bundle.beam.decode(lp), bundle.tokenizer, bundle.frame_seconds)
    return normalize_transcript(" ".join(w.word for w in words))
