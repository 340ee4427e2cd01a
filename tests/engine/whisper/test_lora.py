"""Whisper adapters (custom acoustic models of the Whisper-based versions): applied per call, never merged,
on float and int8 networks; trained on the decoder's loss with the base network left as it was."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from engine.whisper.adapt import WhisperAdaptConfig, train_adapter
from engine.whisper.lora import (Adapter, AdapterError, LoRALinear, adapted, merged_state_dict, target_names, weight_shape,
                                 wrap, wrapped_layers)
from engine.whisper.network import Whisper, WhisperDims, quantized

TINY = WhisperDims(n_mels=80, n_audio_ctx=64, n_audio_state=32, n_audio_head=2, n_audio_layer=3, n_vocab=40,
                   n_text_ctx=16, n_text_state=32, n_text_head=2, n_text_layer=2)


def _model(seed: int = 0) -> Whisper:
    torch.manual_seed(seed)
    model = Whisper(TINY)
    with torch.no_grad():
        model.decoder.positional_embedding.normal_(0, 0.02)
    return model.eval()


def _adapter(model: Whisper, encoder_blocks: int = 1, seed: int = 1) -> Adapter:
    gen = torch.Generator().manual_seed(seed)
    factors = {}
    for name in target_names(model, encoder_blocks):
        out_f, in_f = weight_shape(model.get_submodule(name))
        factors[name] = (torch.randn(4, in_f, generator=gen), torch.randn(out_f, 4, generator=gen))
    return Adapter(factors, scale=0.5, rank=4, encoder_blocks=encoder_blocks)


def _logits(model: Whisper, mel: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        audio = model.encoder(mel)
        return model.decoder(tokens, model.decoder.cross_kv(audio))[0]


MEL = torch.randn(1, 40, 80, generator=torch.Generator().manual_seed(3))
TOKENS = torch.tensor([[1, 5, 7, 9]])


def test_a_wrapped_network_computes_what_it_did_until_an_adapter_is_applied_and_again_after() -> None:
    model = _model()
    before = _logits(model, MEL, TOKENS)
    wrap(model)
    assert len(wrapped_layers(model)) == len(target_names(model, TINY.n_audio_layer))
    assert torch.equal(_logits(model, MEL, TOKENS), before)
    adapter = _adapter(model)
    with adapted(model, adapter):
        during = _logits(model, MEL, TOKENS)
    assert not torch.allclose(during, before, atol=1e-3)
    assert torch.equal(_logits(model, MEL, TOKENS), before)
    with adapted(model, None):
        assert torch.equal(_logits(model, MEL, TOKENS), before)


def test_an_applied_adapter_equals_its_factors_merged_into_the_weights() -> None:
    model = wrap(_model())
    adapter = _adapter(model)
    with adapted(model, adapter):
        got = _logits(model, MEL, TOKENS)
    merged = _model()
    with torch.no_grad():
        for name, (a, b) in adapter.factors.items():
            merged.get_submodule(name).weight += adapter.scale * b @ a
    assert torch.allclose(got, _logits(merged, MEL, TOKENS), atol=1e-4)


def test_merged_state_dict_is_the_adapted_network_without_its_wrappers() -> None:
    """What the base-model recipe's LoRA fine-tune writes: plain layer names, factors folded into the weights."""
    model = wrap(_model())
    adapter = _adapter(model)
    with adapted(model, adapter):
        got = _logits(model, MEL, TOKENS)
        state = merged_state_dict(model)
    plain = _model(seed=5)
    assert set(state) == set(plain.state_dict())
    plain.load_state_dict(state)
    assert torch.allclose(got, _logits(plain, MEL, TOKENS), atol=1e-4)
    # with no adapter applied, the merge is the base network's own weights
    base = _model().state_dict()
    assert all(torch.equal(v, base[k]) for k, v in merged_state_dict(model).items())


def test_adapters_apply_to_an_int8_network_too() -> None:
    model = wrap(quantized(_model()))
    adapter = _adapter(model)
    adapter.check(model)
    before = _logits(model, MEL, TOKENS)
    with adapted(model, adapter):
        assert not torch.allclose(_logits(model, MEL, TOKENS), before, atol=1e-3)
    assert torch.equal(_logits(model, MEL, TOKENS), before)


def test_an_adapter_survives_its_file_and_one_for_another_network_is_refused(tmp_path) -> None:
    model = wrap(_model())
    adapter = _adapter(model)
    torch.save(adapter.to_dict(), tmp_path / "adapted.pt")
    again = Adapter.load(tmp_path / "adapted.pt")
    assert again.rank == 4 and again.scale == 0.5 and set(again.factors) == set(adapter.factors)
    with adapted(model, adapter):
        first = _logits(model, MEL, TOKENS)
    with adapted(model, again):
        assert torch.equal(_logits(model, MEL, TOKENS), first)
    wider = wrap(Whisper(WhisperDims(**{**TINY.to_dict(), "n_text_state": 64, "n_audio_state": 64})))
    with pytest.raises(AdapterError, match="factors for a"):
        again.check(wider)
    with pytest.raises(AdapterError, match="not a Whisper adapter"):
        Adapter.from_dict({"kind": "something else"})
    with pytest.raises(AdapterError, match="encoder_blocks"):
        target_names(model, 7)


def test_training_lowers_the_decoders_loss_and_leaves_the_base_network_as_it_was() -> None:
    model = _model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    text = SimpleNamespace(prompt=[1, 2], eot=3, encode=lambda t: [4 + (ord(c) % 30) for c in t.replace(" ", "")])
    gen = torch.Generator().manual_seed(5)
    examples = [(torch.randn(30 + 2 * i, 80, generator=gen), word) for i, word in enumerate(["abc", "de", "fgh", "ij"])]
    config = WhisperAdaptConfig(rank=4, encoder_blocks=1, epochs=12, learning_rate=1e-2, batch_size=2, min_pad_s=0.5)
    seen = []
    adapter, losses = train_adapter(model, text, examples, config, progress=seen.append)
    assert losses[-1] < 0.5 * losses[0]
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert set(adapter.factors) == set(target_names(model, 1))
    again, _ = train_adapter(model, text, examples, config)
    assert all(torch.equal(adapter.factors[n][0], again.factors[n][0]) for n in adapter.factors)  # seeded


def test_an_adapter_needs_examples_and_a_sane_config() -> None:
    with pytest.raises(ValueError, match="no examples"):
        train_adapter(_model(), SimpleNamespace(prompt=[1], eot=3, encode=lambda t: [4]), [])
    with pytest.raises(ValueError, match="positive"):
        WhisperAdaptConfig(rank=0)
    with pytest.raises(ValueError, match="speeds"):
        WhisperAdaptConfig(speeds=(3.0,))
