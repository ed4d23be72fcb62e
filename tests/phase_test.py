"""jdrum.beat.conditions.phase_features and the `low+phase` beat condition (issue 17)."""

import jax
import numpy as np
import pytest

from jdrum.audio import SAMPLE_RATE
from jdrum.beat import conditions
from jdrum.models import transformer
from jdrum.trainers import lm

SIN1, COS1, SIN2, COS2, SIN3, COS3, BAR_SIN, BAR_COS, LOG_TEMPO = range(conditions.PHASE_FEATURES)


def _marks(n, beats):
    """(n,) int32 high-level marks with {token: position in the bar}."""
    high = np.zeros(n, np.int32)
    for token, position in beats.items():
        high[token] = position
    return high


def _angle(features, sin, cos):
    """Phases in [0, 1) of (sin, cos) columns."""
    return np.mod(np.arctan2(features[:, sin], features[:, cos]) / (2 * np.pi), 1.0)


# 4/4 at 20 tokens a beat (129.2 BPM): downbeats on tokens 10 and 90.
FOUR_FOUR = _marks(100, {10: 1, 30: 2, 50: 3, 70: 4, 90: 1})


def test_beat_phase_is_zero_at_beats_and_half_halfway():
    features = conditions.phase_features(FOUR_FOUR)
    assert features.shape == (100, conditions.PHASE_FEATURES) and features.dtype == np.float32
    phase = _angle(features, SIN1, COS1)
    np.testing.assert_allclose(np.cos(2 * np.pi * phase[[10, 30, 50, 70, 90]]), 1.0, atol=1e-6)
    np.testing.assert_allclose(phase[[20, 40, 60, 80]], 0.5, atol=1e-6)
    np.testing.assert_allclose(phase[35], 0.25, atol=1e-6)
    # Extrapolated with the first / last inter-beat interval outside the beats.
    np.testing.assert_allclose(phase[0], 0.5, atol=1e-6)
    np.testing.assert_allclose(phase[99], 9 / 20, atol=1e-6)


def test_harmonics_are_multiples_of_the_beat_phase():
    features = conditions.phase_features(FOUR_FOUR)
    phase = np.mod(np.arange(100) - 10, 20) / 20
    for harmonic, (sin, cos) in enumerate([(SIN1, COS1), (SIN2, COS2), (SIN3, COS3)], 1):
        np.testing.assert_allclose(
            features[:, sin], np.sin(2 * np.pi * harmonic * phase), atol=1e-5
        )
        np.testing.assert_allclose(
            features[:, cos], np.cos(2 * np.pi * harmonic * phase), atol=1e-5
        )


def test_bar_phase_runs_between_downbeats():
    bar = _angle(conditions.phase_features(FOUR_FOUR), BAR_SIN, BAR_COS)
    np.testing.assert_allclose(bar[[30, 50, 70]], [0.25, 0.5, 0.75], atol=1e-6)
    np.testing.assert_allclose(bar[40], 0.375, atol=1e-6)
    assert min(bar[90], 1 - bar[90]) < 1e-6 and min(bar[10], 1 - bar[10]) < 1e-6


def test_bar_phase_counts_beats_with_fewer_than_two_downbeats():
    # 3/4 with one downbeat (token 50): bars of 3 beats, the first beat is the bar's 2nd.
    high = _marks(80, {10: 2, 30: 3, 50: 1, 70: 2})
    bar = _angle(conditions.phase_features(high), BAR_SIN, BAR_COS)
    np.testing.assert_allclose(bar[[10, 30, 70]], [1 / 3, 2 / 3, 1 / 3], atol=1e-6)
    np.testing.assert_allclose(bar[60], 1 / 6, atol=1e-6)
    assert min(bar[50], 1 - bar[50]) < 1e-6


def test_log_tempo_follows_the_local_inter_beat_interval():
    # 20 tokens a beat, then 10 (twice as fast) from token 40.
    high = _marks(60, {0: 1, 20: 2, 40: 3, 50: 4})
    features = conditions.phase_features(high)
    bpm = 60 * SAMPLE_RATE / (20 * conditions.TOKEN_HOP)  # 129.2
    np.testing.assert_allclose(features[:40, LOG_TEMPO], np.log2(bpm / 120), rtol=1e-6)
    np.testing.assert_allclose(features[40:, LOG_TEMPO], np.log2(2 * bpm / 120), rtol=1e-6)
    np.testing.assert_allclose(_angle(features, SIN1, COS1)[45], 0.5, atol=1e-6)


@pytest.mark.parametrize("beats", [{}, {7: 1}, {7: 3}])
def test_fewer_than_two_beats_give_zeros(beats):
    features = conditions.phase_features(_marks(40, beats))
    assert features.shape == (40, conditions.PHASE_FEATURES)
    assert not features.any()
    assert conditions.phase_features(np.zeros(0, np.int32)).shape == (0, 9)


def test_beat_conditions_give_low_then_phase():
    num_samples = 3 * SAMPLE_RATE
    frames = conditions.num_tracker_frames(num_samples)
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(frames, 50)).astype(np.float32)
    probabilities = np.tile(np.float32([0.96, 0.02, 0.02]), (frames, 1))
    beats = np.array([[0.25, 1], [0.75, 2], [1.25, 3], [1.75, 4], [2.25, 1]])
    levels = conditions.beat_conditions(embedding, probabilities, num_samples, beats_Nx2=beats)
    n = conditions.num_tokens(num_samples)
    assert levels["low+phase"].shape == (n, 59) and levels["low+phase"].dtype == np.float32
    np.testing.assert_array_equal(levels["low+phase"][:, :50], levels["low"])
    np.testing.assert_array_equal(
        levels["low+phase"][:, 50:], conditions.phase_features(levels["high"])
    )


@pytest.mark.parametrize("high_dbn", conditions.HIGH_DBNS)
def test_batch_of_low_phase_record(high_dbn):
    length = 128
    rng = np.random.default_rng(1)
    high = _marks(length, {5: 1, 27: 2, 48: 3, 70: 4, 92: 1, 113: 2}).astype(np.int8)
    record = {
        "drum_codes": rng.integers(0, 32, length),
        "drumless_codes": rng.integers(0, 1024, length),
        "beat_low": rng.normal(size=(length, 50)).astype(np.float16),
        "beat_high": high if high_dbn == "madmom" else np.zeros(length, np.int8),
        "beat_high_reference": high if high_dbn == "reference" else np.zeros(length, np.int8),
    }
    batch = lm.batch_of(record, "low+phase", high_dbn)
    assert batch["beat"].shape == (length, 59) and batch["beat"].dtype == np.float32
    np.testing.assert_array_equal(batch["beat"][:, :50], record["beat_low"].astype(np.float32))
    np.testing.assert_array_equal(batch["beat"][:, 50:], conditions.phase_features(high))
    assert batch["beat"][:, 50:].any()


def test_tiny_low_phase_lm_runs():
    config = transformer.LMConfig(
        vocab_size=8, prime_vocab_size=16, n_ctx=32, width=16, heads=2, block_len=8,
        prior_layers=10, prime_layers=1, beat="low+phase",
    )  # fmt: skip
    assert config.beat_width == 50 + conditions.PHASE_FEATURES
    key = jax.random.key(0)
    drum = jax.random.randint(key, (2, 32), 0, 8)
    drumless = jax.random.randint(key, (2, 32), 0, 16)
    low = np.asarray(jax.random.normal(key, (2, 32, 50)), np.float32)
    phase = conditions.phase_features(_marks(32, {3: 1, 11: 2, 19: 3, 27: 4}))
    beat = np.concatenate([low, np.broadcast_to(phase, (2, 32, 9))], -1)
    model = transformer.DrumLM(config)
    variables = model.init(key, drum, drumless, beat)
    assert variables["params"]["beat_proj"]["kernel"].shape == (59, 16)
    logits = model.apply(variables, drum, drumless, beat)
    assert logits.shape == (2, 32, 8) and np.isfinite(logits).all()
    # The phase columns reach the logits.
    without_phase = np.concatenate([low, np.zeros((2, 32, 9), np.float32)], -1)
    moved = model.apply(variables, drum, drumless, without_phase)
    assert not np.allclose(moved, logits)
