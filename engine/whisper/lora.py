"""Low-rank adapters (LoRA) on Whisper's linear layers: the custom acoustic models of the Whisper-based versions.

A custom acoustic model of a Whisper-based version changes only the ``whisper`` final pass (the
full-context encoder and the decoder that write each final); the streaming CTC pass that gives
the interim results stays the base's, so streams whose custom acoustic models differ are still
stepped in one batch. An adapter is a set of factors ``a`` ``(r, in)`` and ``b`` ``(out, r)`` per
adapted layer: the layer computes ``base(x) + scale * (x a^T) b^T``. They are not merged into the
weights: one copy of the network serves every custom model of a version, each final applying its
request's adapter (:func:`adapted`) for the duration of its decode — under a megabyte (rank 4) per
custom model, and the base layers may be int8 (:func:`engine.whisper.network.quantized`) while the
factors stay float32.

Which layers (:data:`DECODER_TARGETS`, :data:`ENCODER_TARGETS` on the top ``encoder_blocks``) and
the rank are recorded with the factors; :mod:`engine.whisper.adapt` trains them.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.whisper.network import Whisper

#: the layers of every decoder block that get an adapter (the cross-attention's key and value act on the audio)
DECODER_TARGETS = ("attn.query", "attn.key", "attn.value", "attn.out", "cross_attn.query", "cross_attn.key",
                   "cross_attn.value", "cross_attn.out", "mlp.0", "mlp.2")
#: the layers of each adapted encoder block
ENCODER_TARGETS = ("attn.query", "attn.key", "attn.value", "attn.out", "mlp.0", "mlp.2")


class AdapterError(ValueError):
    """Factors that do not fit the network they are applied to."""


class LoRALinear(nn.Module):
    """A linear layer (float or dynamically quantised) with an optional low-rank term.

    Attributes:
        base: the wrapped layer.
        delta: ``(a, b, scale)`` while an adapter is applied (or trained), else None.
    """

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.delta: tuple[torch.Tensor, torch.Tensor, float] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.delta is None:
            return y
        a, b, scale = self.delta
        # one fused multiply-add for the second factor: a decoded token runs this for every adapted
        # layer, where the number of small operations is the cost
        low = (x @ a.T).reshape(-1, a.shape[0])
        return torch.addmm(y.reshape(-1, y.shape[-1]), low, b.T, alpha=scale).view(y.shape)


def weight_shape(layer: nn.Module) -> tuple[int, int]:
    """``(out, in)`` of a linear layer: float, dynamically quantised (its weight is a method) or wrapped."""
    if isinstance(layer, LoRALinear):
        layer = layer.base
    weight = layer.weight() if callable(layer.weight) else layer.weight
    return int(weight.shape[0]), int(weight.shape[1])


def target_names(model: Whisper, encoder_blocks: int, decoder: bool = True) -> list[str]:
    """The names of the linear layers an adapter of ``encoder_blocks`` top encoder blocks (and of the
    decoder's blocks, with ``decoder``) covers."""
    n_enc = len(model.encoder.blocks)
    if not 0 <= encoder_blocks <= n_enc:
        raise AdapterError(f"encoder_blocks must be between 0 and {n_enc}, got {encoder_blocks}")
    names = [f"decoder.blocks.{i}.{t}" for i in range(len(model.decoder.blocks)) for t in DECODER_TARGETS] \
        if decoder else []
    names += [f"encoder.blocks.{i}.{t}" for i in range(n_enc - encoder_blocks, n_enc) for t in ENCODER_TARGETS]
    return names


def wrap(model: nn.Module, names: list[str] | None = None) -> nn.Module:
    """Put a :class:`LoRALinear` around the linear layers ``names`` of ``model`` (in place; every
    decoder and encoder target when None) and return it. Wrapping twice is a no-op."""
    if names is None:
        names = target_names(model, len(model.encoder.blocks))
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        layer = getattr(parent, child) if not isinstance(parent, nn.Sequential) else parent[int(child)]
        if isinstance(layer, LoRALinear):
            continue
        if isinstance(parent, nn.Sequential):
            parent[int(child)] = LoRALinear(layer)
        else:
            setattr(parent, child, LoRALinear(layer))
    return model


def wrapped_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Name -> wrapped layer."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def new_factors(model: nn.Module, names: list[str], rank: int, gen: torch.Generator
                ) -> dict[str, tuple[nn.Parameter, nn.Parameter]]:
    """Trainable factors ``(a, b)`` for the wrapped layers ``names`` of ``model``, initialised as LoRA
    does: ``a`` random, ``b`` zero, so training starts from the base network."""
    layers = wrapped_layers(model)
    out = {}
    for name in names:
        out_features, in_features = weight_shape(layers[name])
        a = nn.Parameter(torch.randn(rank, in_features, generator=gen) / math.sqrt(in_features))
        b = nn.Parameter(torch.zeros(out_features, rank))
        out[name] = (a, b)
    return out


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict as it would be without the wrappers: each float wrapped layer's weight with
    its applied low-rank term merged in (``w + scale * b a``), under the layer's own name."""
    layers = wrapped_layers(model)
    state = {}
    for key, value in model.state_dict().items():
        owner, _, _ = key.rpartition(".base.")
        if owner in layers:
            plain = key.replace(".base.", ".", 1)
            delta = layers[owner].delta
            if key.endswith(".base.weight") and delta is not None:
                a, b, scale = delta
                value = value + scale * (b.detach() @ a.detach())
            state[plain] = value.detach().clone()
        else:
            state[key] = value
    return state


@dataclass(frozen=True)
class Adapter:
    """One custom acoustic model's factors.

    Attributes:
        factors: layer name -> ``(a, b)``.
        scale: the factor of every low-rank term (LoRA's alpha / rank).
        rank: the rank ``r``.
        encoder_blocks: how many top encoder blocks it adapts.
    """

    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    scale: float
    rank: int
    encoder_blocks: int

    def to_dict(self) -> dict:
        """What :func:`torch.save` writes."""
        return {"kind": "whisper-lora", "scale": self.scale, "rank": self.rank, "encoder_blocks": self.encoder_blocks,
                "factors": {n: {"a": a.contiguous(), "b": b.contiguous()} for n, (a, b) in self.factors.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Adapter:
        """Inverse of :meth:`to_dict`.

        Raises:
            AdapterError: not an adapter, or factors of mismatched shapes.
        """
        if data.get("kind") != "whisper-lora":
            raise AdapterError(f"not a Whisper adapter (kind {data.get('kind')!r})")
        factors = {}
        for name, f in data["factors"].items():
            a, b = f["a"].float(), f["b"].float()
            if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
                raise AdapterError(f"{name}: factors of shapes {tuple(a.shape)} and {tuple(b.shape)} do not multiply")
            factors[name] = (a, b)
        return cls(factors, float(data["scale"]), int(data["rank"]), int(data["encoder_blocks"]))

    @classmethod
    def load(cls, path: Path) -> Adapter:
        """Read an adapter file written with ``torch.save(adapter.to_dict(), path)``."""
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=True))

    def check(self, model: nn.Module) -> None:
        """Raise :class:`AdapterError` unless every factor fits a wrapped layer of ``model``."""
        layers = wrapped_layers(model)
        for name, (a, b) in self.factors.items():
            layer = layers.get(name)
            if layer is None:
                raise AdapterError(f"the network has no adaptable layer {name!r}")
            shape = weight_shape(layer)
            if (b.shape[0], a.shape[1]) != shape:
                raise AdapterError(f"{name}: factors for a {b.shape[0]}x{a.shape[1]} layer, the network's is "
                                   f"{shape[0]}x{shape[1]}")


_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def _lock_of(model: nn.Module) -> threading.Lock:
    with _LOCKS_LOCK:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


@contextmanager
def adapted(model: nn.Module, adapter: Adapter | None) -> Iterator[nn.Module]:
    """``model`` with ``adapter`` applied for the duration of the block (None: the base network).

    The uses of one network are serialised, with or without an adapter (an adapter lives in the
    network's layers while it is applied, so a concurrent base decode would see it); the final
    pass runs one utterance at a time per version anyway.
    """
    with _lock_of(model):
        if adapter is None:
            yield model
            return
        layers = wrapped_layers(model)
        try:
            for name, (a, b) in adapter.factors.items():
                layers[name].delta = (a, b, adapter.scale)
            yield model
        finally:
            for name in adapter.factors:
                layers[name].delta = None
