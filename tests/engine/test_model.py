import pytest
import torch

from engine.model import ModelConfig, split_states, stack_states
from tests.conftest import tiny_model


def features(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 80, generator=torch.Generator().manual_seed(seed)) - 10


@pytest.mark.parametrize("chunk", [4, 8, 16, 28, 64])
def test_streaming_equals_whole_utterance(chunk: int) -> None:
    model = tiny_model()
    x = features(1, 96)
    with torch.no_grad():
        whole, lengths = model(x, torch.tensor([96]))
        state, outs = model.initial_state(1), []
        for start in range(0, 96, chunk):
            out, _, state = model.step(x[:, start : start + chunk], torch.tensor([min(chunk, 96 - start)]), state)
            outs.append(out)
    assert int(lengths) == 24
    assert torch.allclose(torch.cat(outs, dim=1), whole, rtol=1e-4, atol=1e-3)


def test_batched_equals_one_by_one_with_ragged_lengths() -> None:
    model = tiny_model()
    x = features(3, 48, seed=1)
    lengths = torch.tensor([48, 16, 32])
    with torch.no_grad():
        batched, out_lengths = model(x, lengths)
        for i in range(3):
            n = int(lengths[i])
            single, _ = model(x[i : i + 1, :n], torch.tensor([n]))
            assert torch.allclose(batched[i, : n // 4], single[0], rtol=1e-4, atol=1e-3)
    assert out_lengths.tolist() == [12, 4, 8]


def test_batched_streaming_with_ragged_chunks_equals_single_streams() -> None:
    # Rows whose chunk is shorter (or empty) must keep exactly their own caches.
    model = tiny_model()
    x = features(2, 48, seed=4)
    with torch.no_grad():
        singles = [model(x[i : i + 1], torch.tensor([48]))[0] for i in range(2)]
        state, outs = model.initial_state(2), [[], []]
        schedule = [(16, 8), (16, 0), (16, 24), (0, 16)]
        pos = [0, 0]
        for n0, n1 in schedule:
            width = max(n0, n1)
            chunk = torch.zeros(2, width, 80)
            chunk[0, :n0] = x[0, pos[0] : pos[0] + n0]
            chunk[1, :n1] = x[1, pos[1] : pos[1] + n1]
            out, out_lengths, state = model.step(chunk, torch.tensor([n0, n1]), state)
            for i, n in enumerate((n0, n1)):
                outs[i].append(out[i, : n // 4])
                pos[i] += n
    for i in range(2):
        assert torch.allclose(torch.cat(outs[i]), singles[i][0], rtol=1e-4, atol=1e-3)


def test_stream_with_nothing_in_a_step_keeps_its_state() -> None:
    model = tiny_model()
    state = model.initial_state(2)
    with torch.no_grad():
        _, _, state = model.step(features(2, 16), torch.tensor([16, 16]), state)
        _, out_lengths, after = model.step(features(2, 16, seed=3), torch.tensor([16, 0]), state)
    assert out_lengths.tolist() == [4, 0]
    for new, old in zip(after.caches, state.caches):
        assert torch.equal(new[1], old[1])
        assert not torch.equal(new[0], old[0])
    assert torch.equal(after.cmn_sum[1], state.cmn_sum[1])


def test_stack_and_split_are_inverse() -> None:
    model = tiny_model()
    with torch.no_grad():
        _, _, state = model.step(features(3, 16), torch.tensor([16, 8, 16]), model.initial_state(3))
    assert len(state.caches) == 3
    parts = split_states(state)
    assert [p.batch_size for p in parts] == [1, 1, 1]
    again = stack_states(parts)
    for a, b in zip((again.cmn_sum, again.cmn_count, *again.caches), (state.cmn_sum, state.cmn_count, *state.caches)):
        assert torch.equal(a, b)


def test_step_rejects_frames_that_are_not_whole_output_frames() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="multiples of 4"):
        model.step(features(1, 10), torch.tensor([10]), model.initial_state(1))
    with pytest.raises(ValueError, match="mel bins"):
        model.step(torch.zeros(1, 8, 40), torch.tensor([8]), model.initial_state(1))


def test_config_round_trip_and_unknown_keys() -> None:
    config = ModelConfig(n_mels=80, vocab_size=40, channels=24, dilations=(1, 2))
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**config.to_dict(), "heads": 4})


def test_no_right_context_future_frames_do_not_change_the_past() -> None:
    # Causality: the look-ahead is only the chunk (160 ms), inside the 200 ms budget.
    model = tiny_model()
    x = features(1, 64, seed=5)
    y = x.clone()
    y[:, 32:] += 5.0
    with torch.no_grad():
        a, _ = model(x, torch.tensor([64]))
        b, _ = model(y, torch.tensor([64]))
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


@pytest.mark.parametrize("batch,width", [(1, 8), (5, 16), (3, 32)])
def test_traced_step_equals_the_eager_step(batch: int, width: int) -> None:
    from engine.model import StreamState, TracedStep

    model = tiny_model()
    traced = TracedStep(model)
    torch.manual_seed(batch)
    fresh = model.initial_state(batch)
    state = StreamState(torch.randn(batch, 80), torch.rand(batch) * 50, tuple(torch.randn_like(c) for c in fresh.caches))
    features = torch.randn(batch, width, 80)
    lengths = torch.full((batch,), width)
    lengths[0] = width - 4
    with torch.no_grad():
        eager = model.step(features, lengths, state)
        graph = traced(features, lengths, state)
    assert torch.allclose(eager[0], graph[0], atol=1e-5) and torch.equal(eager[1], graph[1])
    for a, b in zip((eager[2].cmn_sum, eager[2].cmn_count, *eager[2].caches),
                    (graph[2].cmn_sum, graph[2].cmn_count, *graph[2].caches)):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="multiples of 4"):
        traced(features[:, :6], torch.full((batch,), 6), state)
