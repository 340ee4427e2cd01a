"""The CTranslate2 reader against ctranslate2 itself, the sha256 check, the openai-whisper form."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from engine.whisper import weights
from engine.whisper.features import whisper_log_mel
from engine.whisper.model import load_pretrained, shared_pretrained
from engine.whisper.network import Whisper, WhisperDims
from engine.whisper.weights import SOURCES, WeightsError, openai_state_dict, read_ct2, source_folder


def _speechlike(seconds: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(16000 * seconds)) / 16000
    tone = torch.sin(2 * torch.pi * (180 + 40 * torch.sin(2 * torch.pi * 3 * t)) * t)
    return 0.3 * tone * (0.5 + 0.5 * torch.sin(2 * torch.pi * 2 * t)) + 0.01 * torch.randn(t.shape, generator=g)


@pytest.mark.timeout(120)
def test_reader_matches_ctranslate2_encoder() -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    model = shared_pretrained("whisper-tiny.en")
    mel = whisper_log_mel(torch.nn.functional.pad(_speechlike(2.0), (0, 16000 * 28)))[:3000]
    reference = ctranslate2.models.Whisper(str(source_folder(SOURCES["whisper-tiny.en"])), device="cpu",
                                           compute_type="float32")
    view = ctranslate2.StorageView.from_array(mel.T[None].contiguous().numpy())
    expected = torch.from_numpy(np.array(reference.encode(view, to_cpu=True)))
    with torch.inference_mode():
        ours = model.encoder(mel[None])
    assert ours.shape == expected.shape == (1, 1500, 384)
    assert (ours - expected).abs().max() < 1e-3


def test_pinned_hash_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = SOURCES["whisper-tiny.en"].__class__(**{**SOURCES["whisper-tiny.en"].__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(SOURCES, "whisper-tiny.en", wrong)
    with pytest.raises(WeightsError, match="expected 0000.*refusing"):
        load_pretrained("whisper-tiny.en")


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    source = SOURCES["whisper-tiny.en"]
    monkeypatch.setitem(SOURCES, "x", source.__class__(**{**source.__dict__, "parts": ("no_such_pkg_vx/model.bin",)}))
    with pytest.raises(WeightsError, match="no_such_pkg_vx.*not installed"):
        weights.verified_model_bin(SOURCES["x"])


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def test_reader_parses_the_binary_layout() -> None:
    values = np.arange(6, dtype=np.float16).reshape(2, 3)
    blob = (struct.pack("<I", 6) + _string("TestSpec") + struct.pack("<I", 1) + struct.pack("<I", 2)
            + _string("a/weight") + struct.pack("<B", 2) + struct.pack("<2I", 2, 3) + struct.pack("<B", 4)
            + struct.pack("<I", values.nbytes) + values.tobytes()
            + _string("a/n") + struct.pack("<B", 0) + struct.pack("<B", 2) + struct.pack("<I", 2)
            + np.int16(6).tobytes()
            + struct.pack("<I", 1) + _string("b/weight") + _string("a/weight"))
    spec, variables = read_ct2(blob)
    assert spec == "TestSpec"
    assert variables["a/weight"].tolist() == values.tolist() and variables["a/weight"].dtype == torch.float16
    assert int(variables["a/n"]) == 6
    assert variables["b/weight"] is variables["a/weight"]
    with pytest.raises(WeightsError, match="ends early"):
        read_ct2(blob[:30])
    with pytest.raises(WeightsError, match="binary version"):
        read_ct2(struct.pack("<I", 99) + blob[4:])


def test_openai_checkpoint_form_loads() -> None:
    dims = WhisperDims(n_mels=8, n_audio_ctx=20, n_audio_state=64, n_audio_head=1, n_audio_layer=1, n_vocab=30,
                       n_text_ctx=10, n_text_state=64, n_text_head=1, n_text_layer=1)
    model = Whisper(dims)
    state = {k: v for k, v in model.state_dict().items() if k != "encoder.positional_embedding"}
    got_dims, got = openai_state_dict({"dims": dims.to_dict(), "model_state_dict": state})
    again = Whisper(WhisperDims(**got_dims))
    again.load_state_dict(got)
    assert torch.equal(again.encoder.positional_embedding, model.encoder.positional_embedding)
    with pytest.raises(WeightsError, match="not an openai-whisper checkpoint"):
        openai_state_dict({"state": {}})


@pytest.mark.timeout(120)
def test_int8_copy_decodes_real_speech_alike() -> None:
    from engine.audio import load_audio
    from engine.whisper.decode import DecodeOptions, UtteranceDecoder, WhisperText
    from engine.whisper.features import WhisperFeatureConfig
    from engine.features import log_mel
    from tests.conftest import FIXTURES

    model = shared_pretrained("whisper-tiny.en")
    text = WhisperText(source_folder(SOURCES["whisper-tiny.en"]) / "tokenizer.json", model.dims.n_vocab)
    feats = log_mel(load_audio(FIXTURES / "allison" / "vm-tooshort.wav", 8000), WhisperFeatureConfig(8000))
    full = UtteranceDecoder(model, text)
    small = UtteranceDecoder(model, text, DecodeOptions(int8=True))
    assert small.whisper is not model and model.decoder.output is None  # a copy; the shared model is untouched
    assert full.decode(feats) == small.decode(feats) == "your message is too short"


@pytest.mark.timeout(180)
def test_a_custom_lm_rescores_the_decoders_n_best(tmp_path) -> None:
    """Issue 12: a custom LM takes part in the Whisper final pass by rescoring its N-best; the weight
    decides how far it may move the choice away from the acoustics."""
    from engine.audio import load_audio
    from engine.features import log_mel
    from engine.whisper.decode import UtteranceDecoder, WhisperText
    from engine.whisper.features import WhisperFeatureConfig
    from tests.conftest import FIXTURES

    model = shared_pretrained("whisper-tiny.en")
    text = WhisperText(source_folder(SOURCES["whisper-tiny.en"]) / "tokenizer.json", model.dims.n_vocab)
    feats = log_mel(load_audio(FIXTURES / "allison" / "vm-tooshort.wav", 8000), WhisperFeatureConfig(8000))
    decoder = UtteranceDecoder(model, text)
    assert decoder.decode(feats, rescore=lambda _t: 0.0) == "your message is too short"
    with torch.inference_mode():
        pool = decoder._beam_pool(model.decoder.cross_kv(decoder.encode(feats)), 4, text.prompt)
    others = {text.decode(h).strip().lower().rstrip(".") for h, _ in pool} - {"your message is too short"}
    assert others, "the beam holds other hypotheses"
    # an LM that only likes one of the others picks it; one that likes the acoustics' choice keeps it
    liked = sorted(others)[0]
    picked = decoder.decode(feats, rescore=lambda t: 0.0 if t == normalize(liked) else -1000.0)
    assert picked == normalize(liked)
    assert decoder.decode(feats, rescore=lambda t: 0.0 if t == "your message is too short" else -1000.0) == \
        "your message is too short"


@pytest.mark.timeout(180)
def test_shallow_fusion_scores_each_hypothesis_as_decoder_plus_lm_and_steers_the_beam() -> None:
    """Issue 12: with fusion the custom LM's term is part of the beam search's own scores: a finished
    hypothesis scores exactly the decoder's log-probability of its tokens plus the LM term of its
    text (sentence end included); an LM that says nothing leaves the beam as it was; and an LM
    that dislikes the acoustics' choice drives the beam elsewhere."""
    import torch.nn.functional as F

    from engine.audio import load_audio
    from engine.features import log_mel
    from engine.whisper.decode import UtteranceDecoder, WhisperText
    from engine.whisper.features import WhisperFeatureConfig
    from tests.conftest import FIXTURES

    model = shared_pretrained("whisper-tiny.en")
    text = WhisperText(source_folder(SOURCES["whisper-tiny.en"]) / "tokenizer.json", model.dims.n_vocab)
    feats = log_mel(load_audio(FIXTURES / "allison" / "vm-tooshort.wav", 8000), WhisperFeatureConfig(8000))
    decoder = UtteranceDecoder(model, text)
    calls = []

    def per_word(t: str, end: bool = True) -> float:
        calls.append((t, end))
        return -0.7 * len(normalize(t).split()) - (0.3 if end else 0.0)

    with torch.inference_mode():
        cross = model.decoder.cross_kv(decoder.encode(feats))
        plain = decoder._beam_pool(cross, 4, text.prompt)
        assert decoder._beam_pool(cross, 4, text.prompt, lambda _t, end=True: 0.0) == plain
        fused = decoder._beam_pool(cross, 4, text.prompt, per_word)
        for ids, score in fused:
            tokens = torch.tensor([text.prompt + ids + [text.eot]])
            logits, _ = model.decoder(tokens[:, :-1], cross)
            logits = logits[0, len(text.prompt) - 1:].float()
            logits[:, text.first_special + 1:] = -float("inf")
            acoustic = float(F.log_softmax(logits, -1).gather(1, tokens[0, len(text.prompt):, None]).sum())
            assert score == pytest.approx(acoustic + per_word(text.decode(ids)), abs=1e-3)
    assert any(not end for _t, end in calls)  # words were scored while the hypotheses were being written
    # an LM that forbids "message": the plain beam's hypotheses all hold it, the fused beam turns away
    assert all("message" in normalize(text.decode(ids)).split() for ids, _ in plain)
    forbid = lambda t, end=True: -50.0 if "message" in normalize(t).split() else 0.0  # noqa: E731
    assert "message" in decoder.transcribe(feats, rescore=forbid).text.split()  # rescoring has nothing else
    steered = decoder.transcribe(feats, rescore=forbid, fuse=True).text
    assert "message" not in steered.split() and steered.endswith("too short"), steered


def normalize(text: str) -> str:
    from engine.text import normalize_transcript
    return normalize_transcript(text)


@pytest.mark.timeout(120)
def test_the_decoder_gives_each_word_a_confidence() -> None:
    from engine.audio import load_audio
    from engine.features import log_mel
    from engine.whisper.decode import UtteranceDecoder, WhisperText
    from engine.whisper.features import WhisperFeatureConfig
    from tests.conftest import FIXTURES

    model = shared_pretrained("whisper-tiny.en")
    text = WhisperText(source_folder(SOURCES["whisper-tiny.en"]) / "tokenizer.json", model.dims.n_vocab)
    feats = log_mel(load_audio(FIXTURES / "allison" / "vm-reenterpassword.wav", 8000), WhisperFeatureConfig(8000))
    decoded = UtteranceDecoder(model, text).transcribe(feats)
    assert decoded.text == "please re enter your password followed by the pound key"
    assert len(decoded.confidences) == len(decoded.text.split()) and all(0 < c <= 1 for c in decoded.confidences)
    assert decoded.confidences[1] == decoded.confidences[2]  # "re-enter": one word for the decoder, two here
    assert sum(decoded.confidences) / len(decoded.confidences) > 0.8  # clear real speech: the decoder is sure


@pytest.mark.timeout(120)
def test_alternatives_are_the_beams_next_best_distinct_transcripts() -> None:
    from engine.audio import load_audio
    from engine.features import log_mel
    from engine.whisper.decode import UtteranceDecoder, WhisperText
    from engine.whisper.features import WhisperFeatureConfig
    from tests.conftest import FIXTURES

    model = shared_pretrained("whisper-tiny.en")
    text = WhisperText(source_folder(SOURCES["whisper-tiny.en"]) / "tokenizer.json", model.dims.n_vocab)
    feats = log_mel(load_audio(FIXTURES / "allison" / "vm-reenterpassword.wav", 8000), WhisperFeatureConfig(8000))
    decoded = UtteranceDecoder(model, text).transcribe(feats, alternatives=2)
    assert decoded.text == "please re enter your password followed by the pound key"
    assert len(decoded.alternatives) == 2 and decoded.text not in decoded.alternatives
    assert len(set(decoded.alternatives)) == len(decoded.alternatives)
    assert UtteranceDecoder(model, text).transcribe(feats).alternatives == ()


@pytest.mark.timeout(120)
def test_the_nbest_carries_posteriors_over_the_beam() -> None:
    from engine.audio import load_audio
    from engine.features import log_mel
    from engine.whisper.decode import RESCORE_BEAM, UtteranceDecoder, WhisperText
    from engine.whisper.features import WhisperFeatureConfig
    from tests.conftest import FIXTURES

    model = shared_pretrained("whisper-tiny.en")
    text = WhisperText(source_folder(SOURCES["whisper-tiny.en"]) / "tokenizer.json", model.dims.n_vocab)
    feats = log_mel(load_audio(FIXTURES / "allison" / "vm-reenterpassword.wav", 8000), WhisperFeatureConfig(8000))
    decoder = UtteranceDecoder(model, text)
    decoded = decoder.transcribe(feats, nbest=True)
    assert decoded.text == "please re enter your password followed by the pound key"
    texts = [t for t, _ in decoded.nbest]
    assert 1 < len(texts) <= 2 * RESCORE_BEAM and len(set(texts)) == len(texts)
    assert sum(p for _, p in decoded.nbest) == pytest.approx(1.0)
    assert [p for _, p in decoded.nbest] == sorted((p for _, p in decoded.nbest), reverse=True)
    assert texts[0] == decoded.text  # clear speech: the chosen transcript is also the likeliest
    assert decoder.transcribe(feats).nbest == ()


@pytest.mark.timeout(120)
def test_a_request_may_ask_for_a_beam() -> None:
    from engine.audio import load_audio
    from engine.features import log_mel
    from engine.whisper.decode import UtteranceDecoder, WhisperText
    from engine.whisper.features import WhisperFeatureConfig
    from tests.conftest import FIXTURES

    model = shared_pretrained("whisper-tiny.en")
    text = WhisperText(source_folder(SOURCES["whisper-tiny.en"]) / "tokenizer.json", model.dims.n_vocab)
    decoder = UtteranceDecoder(model, text)
    feats = log_mel(load_audio(FIXTURES / "allison" / "conf-muted.wav", 8000), WhisperFeatureConfig(8000))
    assert decoder.transcribe(feats, beam_size=4).text == decoder.transcribe(feats).text == "you are now muted"
