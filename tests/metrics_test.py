"""jdrum.metrics: TrackEmb-MSE, Act-Entropy, B-F1, DB-F1 and their aggregation, known answers."""

import math

import numpy as np
import pytest

from jdrum import metrics


def _distributions(rng, num_frames=200):
    p = rng.uniform(0.01, 1.0, size=(num_frames, 3))
    return p / p.sum(-1, keepdims=True)


def _bars(num_bars, period=0.5, start=0.2, meter=4):
    times = start + period * np.arange(num_bars * meter)
    positions = np.tile(np.arange(1, meter + 1), num_bars)
    return np.stack([times, positions], axis=-1)


def test_trackemb_mse():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(100, 50))
    assert metrics.trackemb_mse(emb, emb) == 0.0
    assert metrics.trackemb_mse(np.ones((10, 50)), np.zeros((10, 50))) == 1.0
    assert metrics.trackemb_mse(emb + 0.5, emb) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="one shape"):
        metrics.trackemb_mse(emb[:-1], emb)


def test_act_entropy_is_minimal_for_identical_activations():
    rng = np.random.default_rng(0)
    real = _distributions(rng)
    own = metrics.act_entropy(real, real)
    assert own == pytest.approx(np.mean(-np.sum(real * np.log(real), axis=-1)))
    for _ in range(5):
        assert metrics.act_entropy(_distributions(rng), real) > own
    # One-hot activations: zero entropy; a ruled-out true class costs -log(eps), not infinity.
    one_hot = np.eye(3)[rng.integers(0, 3, size=50)]
    assert metrics.act_entropy(one_hot, one_hot) == pytest.approx(0.0, abs=1e-6)
    wrong = np.roll(one_hot, 1, axis=-1)
    assert metrics.act_entropy(wrong, one_hot) == pytest.approx(-math.log(metrics.ENTROPY_EPS))


def test_beat_f1_known_answers():
    beats = _bars(8)[:, 0]
    assert metrics.beat_f1(beats, beats) == 1.0
    assert metrics.beat_f1(beats, beats + 0.05) == 1.0  # within the 70 ms window
    assert metrics.beat_f1(beats, beats + 0.1) == 0.0
    # Half tempo: P = 1, R = 1/2 -> F1 = 2/3.
    assert metrics.beat_f1(beats, beats[::2]) == pytest.approx(2 / 3)
    # Beats inside the first 5 s are not trimmed.
    early = np.array([0.5, 1.0, 1.5, 2.0])
    assert metrics.beat_f1(early, early) == 1.0
    with pytest.warns(UserWarning, match="empty"):
        assert metrics.beat_f1(beats, []) == 0.0


def test_downbeat_f1_uses_only_the_downbeats():
    reference = _bars(8)
    # Same downbeats, every other beat moved by 0.2 s: B-F1 < 1, DB-F1 = 1.
    estimated = reference.copy()
    estimated[estimated[:, 1] != 1, 0] += 0.2
    assert metrics.beat_f1(reference[:, 0], estimated[:, 0]) == pytest.approx(0.25)
    assert metrics.downbeat_f1(reference, estimated) == 1.0
    # Same beats, bar phase off by one beat: B-F1 = 1, DB-F1 = 0.
    shifted = reference.copy()
    shifted[:, 1] = np.roll(reference[:, 1], 1)
    assert metrics.beat_f1(reference[:, 0], shifted[:, 0]) == 1.0
    assert metrics.downbeat_f1(reference, shifted) == 0.0


def test_clip_metrics_with_given_and_tracked_beats():
    rng = np.random.default_rng(0)
    emb, probabilities = rng.normal(size=(300, 50)), _distributions(rng, 300)
    beats = _bars(2)
    out = metrics.clip_metrics(emb, probabilities, emb, probabilities, beats, beats)
    assert tuple(out) == metrics.METRIC_NAMES
    assert out["trackemb_mse"] == 0.0 and out["beat_f1"] == 1.0 and out["downbeat_f1"] == 1.0

    # Without beats, the DBN tracks them: a clean 120 BPM 4/4 pattern on both sides.
    p = np.full((600, 3), 0.02)
    p[10::50, 2] = 0.9
    p[10::200, 1], p[10::200, 2] = 0.9, 0.02
    p[:, 0] = 1.0 - p[:, 1:].sum(-1)
    out = metrics.clip_metrics(emb[:1], p, emb[:1], p)
    assert out["beat_f1"] == 1.0 and out["downbeat_f1"] == 1.0


def test_summaries():
    assert metrics.summarise([1.0, 2.0, 3.0]) == pytest.approx((2.0, math.sqrt(2 / 3)))
    per_clip = [dict(beat_f1=1.0, act_entropy=0.5), dict(beat_f1=0.5, act_entropy=0.5)]
    summary = metrics.summarise_clips(per_clip)
    assert list(summary) == ["beat_f1", "act_entropy"]
    assert summary["beat_f1"] == pytest.approx((0.75, 0.25))
    assert summary["act_entropy"] == pytest.approx((0.5, 0.0))
    assert (
        metrics.format_summary(summary, digits=2)
        == "beat_f1: 0.75 ± 0.25\nact_entropy: 0.50 ± 0.00"
    )
    with pytest.raises(ValueError, match="clip 1"):
        metrics.summarise_clips([dict(a=1.0), dict(b=1.0)])
    with pytest.raises(ValueError):
        metrics.summarise([])
