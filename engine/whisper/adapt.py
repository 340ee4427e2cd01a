"""Training a Whisper adapter (:mod:`engine.whisper.lora`) on a user's audio and transcripts.

The custom acoustic model of a Whisper-based version: low-rank factors on the decoder's layers
and on the top ``encoder_blocks`` blocks of the full-context encoder, trained with the decoder's
own loss (cross-entropy of the transcript's tokens, teacher-forced after Whisper's prompt) on the
encoder input the ``whisper`` final pass gives the same audio (:func:`engine.whisper.decode.encoder_input`).
Everything else is frozen, so the frozen lower encoder blocks run once per example, before the
first epoch; each epoch then costs only the adapted blocks and the decoder.

Training code: the server process never imports it (the worker does, :mod:`engine.acoustic`).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.whisper.decode import WhisperText, encoder_input
from engine.whisper.lora import Adapter, new_factors, target_names, wrap, wrapped_layers
from engine.whisper.network import Whisper


@dataclass(frozen=True)
class WhisperAdaptConfig:
    """How :func:`train_adapter` trains (the defaults were chosen on held-out TRAIN-split Allison
    prompts: the table in :mod:`engine.acoustic`).

    Attributes:
        rank: the rank of every factor pair.
        alpha: LoRA's alpha (the low-rank term is scaled by ``alpha / rank``).
        encoder_blocks: how many top encoder blocks are adapted.
        decoder: adapt the decoder's blocks too.
        epochs: passes over the examples.
        learning_rate: peak AdamW learning rate (linear warm-up over a tenth, cosine decay to 5%).
        batch_size: utterances per step (grouped by encoder length, shuffled).
        weight_decay: AdamW weight decay.
        seed: seeds the factors' initialisation and the shuffling.
        min_pad_s: the final pass's padding (must match the version's ``whisper_decoding``).
        speeds: speed perturbation: every example is trained on at each of these speeds.
    """

    rank: int = 4
    alpha: float = 16.0
    encoder_blocks: int = 2
    decoder: bool = True
    epochs: int = 3
    learning_rate: float = 3e-4
    batch_size: int = 8
    weight_decay: float = 0.0
    seed: int = 1
    min_pad_s: float = 15.0
    speeds: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "speeds", tuple(self.speeds))  # from a list in JSON, too
        if not self.speeds or not all(0.5 <= f <= 2.0 for f in self.speeds):
            raise ValueError(f"speeds must be factors between 0.5 and 2, got {self.speeds!r}")
        if self.rank < 1 or self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("rank, epochs, batch_size and learning_rate must be positive")


@dataclass
class _Example:
    hidden: torch.Tensor  # (N, C) after the frozen encoder blocks
    tokens: list[int]  # prompt + transcript + end of text


def train_adapter(whisper: Whisper, text: WhisperText, examples: list[tuple[torch.Tensor, str]],
                  config: WhisperAdaptConfig = WhisperAdaptConfig(),
                  progress: Callable[[float], None] | None = None) -> tuple[Adapter, list[float]]:
    """Train an adapter for ``whisper`` (float, not changed) on ``(raw log-mel (T, D), transcript)`` pairs.

    Returns:
        The adapter and the mean loss of every epoch.

    Raises:
        ValueError: no examples.
    """
    if not examples:
        raise ValueError("no examples to train an adapter on")
    gen = torch.Generator().manual_seed(config.seed)
    model = copy.deepcopy(whisper).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    names = target_names(model, config.encoder_blocks, config.decoder)
    wrap(model, names)
    factors = new_factors(model, names, config.rank, gen)
    scale = config.alpha / config.rank
    layers = wrapped_layers(model)
    for name, (a, b) in factors.items():
        layers[name].delta = (a, b, scale)
    enc = model.encoder
    frozen = len(enc.blocks) - config.encoder_blocks
    prepared: list[_Example] = []
    with torch.no_grad():
        for i, (log_mel, transcript) in enumerate(examples):
            mel = encoder_input(log_mel, model.dims.n_audio_ctx, config.min_pad_s)
            x = enc.front(mel[None], causal=False)
            x = x + enc.positional_embedding[: x.shape[1]]
            hidden = enc.run_blocks(x, None, stop=frozen)[0]
            prepared.append(_Example(hidden, [*text.prompt, *text.encode(transcript), text.eot]))
            if progress is not None:
                progress(0.3 * (i + 1) / len(examples))
    params = [p for pair in factors.values() for p in pair]
    opt = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    rng = random.Random(config.seed)
    by_length: dict[int, list[int]] = {}
    for i, ex in enumerate(prepared):
        by_length.setdefault(ex.hidden.shape[0], []).append(i)
    steps_per_epoch = sum(math.ceil(len(v) / config.batch_size) for v in by_length.values())
    total = steps_per_epoch * config.epochs
    warmup = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))))
    start = len(text.prompt) - 1  # the first logit that predicts a transcript token
    losses, done = [], 0
    for _ in range(config.epochs):
        batches = []
        for indices in by_length.values():
            indices = indices[:]
            rng.shuffle(indices)
            batches += [indices[i: i + config.batch_size] for i in range(0, len(indices), config.batch_size)]
        rng.shuffle(batches)
        epoch_loss = 0.0
        for batch in batches:
            hidden = torch.stack([prepared[i].hidden for i in batch])
            width = max(len(prepared[i].tokens) for i in batch)
            tokens = torch.tensor([prepared[i].tokens + [text.eot] * (width - len(prepared[i].tokens)) for i in batch])
            targets = tokens[:, 1:].clone()
            for row, i in enumerate(batch):
                targets[row, len(prepared[i].tokens) - 1:] = -100  # padding
            targets[:, :start] = -100  # the prompt itself
            audio = enc.ln_post(enc.run_blocks(hidden, None, start=frozen))
            logits, _ = model.decoder(tokens[:, :-1], model.decoder.cross_kv(audio))
            loss = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            epoch_loss += float(loss.detach())
            done += 1
            if progress is not None:
                progress(0.3 + 0.7 * done / total)
        losses.append(epoch_loss / max(1, len(batches)))
    adapter = Adapter({n: (a.detach().clone(), b.detach().clone()) for n, (a, b) in factors.items()}, scale,
                      config.rank, config.encoder_blocks)
    return adapter, losses
