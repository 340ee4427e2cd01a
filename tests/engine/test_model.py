import pytest
import torch

from engine.model import ModelConfig, StreamingCTC, split_states, stack_states
from tests.conftest import tiny_model


def features(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 80, generator=torch.Generator().manual_seed(seed)) - 10


@pytest.mark.parametrize("chunk", [8, 16, 24, 64])
def test_streaming_equals_whole_utterance(chunk: int) -> None:
    model = tiny_model()
    x = features(1, 96)
    with torch.no_grad():
        whole, lengths = model(x, torch.tensor([96]))
        state, outs = model.initial_state(1), []
        for start in range(0, 96, chunk):
            out, _, state = model.step(x[:, start : start + chunk], torch.tensor([min(chunk, 96 - start)]), state)
            outs.append(out)
    assert int(lengths) == 12
    assert torch.allclose(torch.cat(outs, dim=1), whole, atol=1e-5)


def test_batched_equals_one_by_one_with_ragged_lengths() -> None:
    model = tiny_model()
    x = features(3, 48, seed=1)
    lengths = torch.tensor([48, 16, 32])
    with torch.no_grad():
        batched, out_lengths = model(x, lengths)
        for i in range(3):
            n = int(lengths[i])
            single, _ = model(x[i : i + 1, :n], torch.tensor([n]))
            assert torch.allclose(batched[i, : n // 8], single[0], atol=1e-5)
    assert out_lengths.tolist() == [6, 2, 4]


def test_stream_with_nothing_in_a_step_keeps_its_state() -> None:
    model = tiny_model()
    state = model.initial_state(2)
    with torch.no_grad():
        _, _, state = model.step(features(2, 16), torch.tensor([16, 16]), state)
        _, out_lengths, after = model.step(features(2, 16, seed=3), torch.tensor([16, 0]), state)
    assert out_lengths.tolist() == [2, 0]
    assert torch.equal(after.high[:, 1], state.high[:, 1])
    assert torch.equal(after.cmn_sum[1], state.cmn_sum[1])
    assert not torch.equal(after.high[:, 0], state.high[:, 0])


def test_stack_and_split_are_inverse() -> None:
    model = tiny_model()
    with torch.no_grad():
        _, _, state = model.step(features(3, 16), torch.tensor([16, 8, 16]), model.initial_state(3))
    parts = split_states(state)
    assert [p.batch_size for p in parts] == [1, 1, 1]
    again = stack_states(parts)
    for a, b in zip((again.cmn_sum, again.cmn_count, again.low, again.high),
                    (state.cmn_sum, state.cmn_count, state.low, state.high)):
        assert torch.equal(a, b)


def test_step_rejects_frames_that_are_not_whole_output_frames() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="multiples of 8"):
        model.step(features(1, 12), torch.tensor([12]), model.initial_state(1))
    with pytest.raises(ValueError, match="mel bins"):
        model.step(torch.zeros(1, 8, 40), torch.tensor([8]), model.initial_state(1))


def test_config_round_trip_and_unknown_keys() -> None:
    config = ModelConfig(n_mels=80, vocab_size=40, hidden=24)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**config.to_dict(), "heads": 4})


def test_look_ahead_is_within_budget() -> None:
    # Chunk (160 ms) plus right context (none: every layer is causal) stays within 200 ms.
    model = StreamingCTC(ModelConfig(n_mels=80, vocab_size=40, hidden=24))
    assert model.config.frames_per_output * 10 <= 200
