"""jdrum.beat.conditions: the token grid and the low / mid / high beat conditions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrum.beat import conditions

SR = 44_100


def _tracker_outputs(num_samples, rng=None):
    """Random (T, 50) embedding and flat, beat-free (T, 3) probabilities for a signal."""
    t = conditions.num_tracker_frames(num_samples)
    rng = rng or np.random.default_rng(0)
    embedding = rng.normal(size=(t, 50)).astype(np.float32)
    probabilities = np.tile(np.float32([0.96, 0.02, 0.02]), (t, 1))
    return embedding, probabilities


def _probabilities(num_frames, beat=(), downbeat=(), floor=0.02):
    """(T, 3) [non-beat, downbeat, beat] with the given {frame: value} spikes."""
    p = np.full((num_frames, 3), floor)
    for frame, value in dict(beat).items():
        p[frame, conditions.BEAT] = value
    for frame, value in dict(downbeat).items():
        p[frame, conditions.DOWNBEAT] = value
    p[:, conditions.NON_BEAT] = 1.0 - p[:, 1:].sum(-1)
    return p


# ----------------------------------------------------------------------- grid and low level


def test_reference_clip_gives_1024_tokens_and_every_other_frame():
    num_samples = 2**20
    assert conditions.num_tokens(num_samples) == 1024
    assert conditions.num_tracker_frames(num_samples) == 2378
    idx = conditions.low_frame_indices(2378, 1024)
    np.testing.assert_array_equal(idx[:5], [0, 2, 4, 6, 9])
    assert idx[-1] == 2375
    np.testing.assert_array_equal(idx, np.floor(np.arange(1024) * 2378 / 1024))

    embedding = np.arange(2378, dtype=np.float32)[:, None] * np.ones(50, np.float32)
    low = conditions.low_condition(embedding, 1024)
    assert low.shape == (1024, 50) and low.dtype == np.float32
    np.testing.assert_array_equal(low[:, 0], idx)


def test_low_condition_is_batched_and_jax_compatible():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 100, 50)), jnp.float32)
    low = jax.jit(conditions.low_condition, static_argnums=1)(x, 37)
    assert isinstance(low, jax.Array) and low.shape == (2, 3, 37, 50)
    idx = conditions.low_frame_indices(100, 37)
    np.testing.assert_array_equal(low[1, 2], np.asarray(x)[1, 2, idx])
    # Upsampling repeats frames.
    np.testing.assert_array_equal(conditions.low_frame_indices(3, 6), [0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("num_samples", [SR * 7, 1000, 2**20 - 1, 2**20 + 1023, 2**20 + 1024])
def test_all_levels_share_the_token_count(num_samples):
    embedding, probabilities = _tracker_outputs(num_samples)
    out = conditions.beat_conditions(embedding, probabilities, num_samples)
    n = num_samples // 1024
    assert out["low"].shape == (n, 50) and out["low"].dtype == np.float32
    assert out["mid"].shape == (n,) and out["mid"].dtype == np.int32
    assert out["high"].shape == (n,) and out["high"].dtype == np.int32


def test_ten_minutes_shapes():
    num_samples = 600 * SR
    n, t = conditions.num_tokens(num_samples), conditions.num_tracker_frames(num_samples)
    assert (n, t) == (25_839, 60_000)
    shape = jax.eval_shape(
        lambda e: conditions.low_condition(e, n), jax.ShapeDtypeStruct((t, 50), jnp.float32)
    )
    assert shape.shape == (n, 50)
    assert conditions.mid_condition(np.zeros((t, 3)), num_samples).shape == (n,)
    # A beat in the last, incomplete token (599.99 s -> token 25839) is dropped.
    high = conditions.high_condition([[1.0, 1], [599.99, 2]], num_samples)
    assert high.shape == (n,) and high.sum() == 1 and high[43] == 1


def test_beat_conditions_checks_the_frame_count():
    embedding, probabilities = _tracker_outputs(SR)
    with pytest.raises(ValueError, match="tracker frames"):
        conditions.beat_conditions(embedding[:-1], probabilities[:-1], SR)
    with pytest.raises(ValueError, match="probabilities"):
        conditions.beat_conditions(embedding, probabilities[:, :2], SR)


# -------------------------------------------------------------------------------- mid level


def test_mid_marks_peaks_on_their_tokens():
    num_samples = 1000 * 441
    probabilities = _probabilities(
        1000,
        beat={100: 0.8, 500: 0.05, 600: 0.9, 605: 0.5},
        downbeat={300: 0.9},
    )
    # A 0.85 bump 10 frames after a 0.9 peak, on a 0.8 shoulder: prominence 0.05 < 0.1.
    probabilities[800, conditions.BEAT] = 0.9
    probabilities[801:820, conditions.BEAT] = 0.8
    probabilities[810, conditions.BEAT] = 0.85
    probabilities[:, conditions.NON_BEAT] = 1.0 - probabilities[:, 1:].sum(-1)

    np.testing.assert_array_equal(conditions.beat_peak_frames(probabilities), [100, 300, 600, 800])
    mid = conditions.mid_condition(probabilities, num_samples)
    assert mid.shape == (430,) and mid.dtype == np.int32
    expected = [p * 441 // 1024 for p in (100, 300, 600, 800)]
    assert expected[0] == 43 == SR // 1024
    np.testing.assert_array_equal(np.nonzero(mid)[0], expected)


def test_mid_uses_exact_frame_times():
    # 0.35 * 44100 is 15434.999... in floating point; frame 35 is sample 15435 all the same.
    np.testing.assert_array_equal(
        conditions.times_to_tokens(np.arange(2000) / 100), np.arange(2000) * 441 // 1024
    )


# ------------------------------------------------------------------------------- high level


def test_high_positions_and_overwrite():
    beats = [[1.5, 4], [0.5, 1], [1.0, 2], [1.01, 3], [2.0, 1], [3.0, 2]]  # unsorted on purpose
    high = conditions.high_condition(beats, 3 * SR)  # 129 tokens; 3.0 s is token 129: dropped
    assert high.shape == (129,) and high.dtype == np.int32
    # 0.5 s -> token 21, 1.0 s and 1.01 s -> token 43 (the later beat wins), 1.5 s -> 64, 2 s -> 86.
    np.testing.assert_array_equal(np.nonzero(high)[0], [21, 43, 64, 86])
    np.testing.assert_array_equal(high[[21, 43, 64, 86]], [1, 3, 4, 1])
    np.testing.assert_array_equal(
        conditions.high_labels(high)[[0, 21, 43, 64, 86]], [0, 1, 2, 2, 1]
    )
    labels = conditions.high_labels(jnp.asarray(high))
    assert isinstance(labels, jax.Array) and labels.dtype == jnp.int32
    assert conditions.high_condition(np.zeros((0, 2)), 3 * SR).sum() == 0
    with pytest.raises(ValueError, match="start at 1"):
        conditions.high_condition([[0.5, 0]], 3 * SR)


def test_dbn_tracks_120_bpm_four_four():
    # 10 s at 120 BPM in 4/4: a beat every 50 frames, a downbeat every 200 frames.
    num_frames = 1000
    beat = {f: 0.9 for f in range(10, num_frames, 50) if (f - 10) % 200}
    downbeat = dict.fromkeys(range(10, num_frames, 200), 0.9)
    probabilities = _probabilities(num_frames, beat=beat, downbeat=downbeat)

    beats = conditions.dbn_high_beats(probabilities)
    assert beats.shape == (20, 2)
    np.testing.assert_allclose(beats[:, 0], np.arange(10, num_frames, 50) / 100, atol=0.011)
    np.testing.assert_array_equal(beats[:, 1], np.tile([1, 2, 3, 4], 5))
    downbeat_times = beats[beats[:, 1] == 1, 0]
    np.testing.assert_allclose(np.diff(downbeat_times), 2.0, atol=0.02)

    num_samples = num_frames * 441
    embedding = np.zeros((num_frames, 50), np.float32)
    out = conditions.beat_conditions(embedding, probabilities, num_samples)
    np.testing.assert_array_equal(
        np.nonzero(out["high"] == 1)[0], conditions.times_to_tokens(downbeat_times)
    )
    assert (out["high"] > 0).sum() == 20
    np.testing.assert_array_equal(np.nonzero(out["mid"])[0], np.nonzero(out["high"])[0])
    # Nothing above the DBN threshold: no beats.
    assert conditions.dbn_high_beats(_probabilities(500)).shape == (0, 2)
