"""jdrum.beat.metrics: TrackEmb-MSE, Act-Entropy, B-F1, DB-F1, CMLt, AMLt, tempo agreement and the
bootstrap summaries, known answers."""

import math

import numpy as np
import pytest

from jdrum.beat import dbn, metrics


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


def test_drum_metrics_with_given_and_decoded_beats():
    rng = np.random.default_rng(0)
    emb, probabilities = rng.normal(size=(300, 50)), _distributions(rng, 300)
    beats = _bars(2)
    out = metrics.drum_metrics(emb, probabilities, emb, probabilities, beats, beats)
    assert tuple(out) == metrics.DRUM_NAMES
    assert out["trackemb_mse"] == 0.0 and out["drums_beat_f1"] == 1.0
    assert out["drums_downbeat_f1"] == 1.0

    # Without beats, madmom's default DBN decodes them: a 120 BPM 4/4 pattern whose peaks
    # (0.5) stay below the REFERENCE §4.3 DBN's threshold of 0.65.
    p = np.full((1000, 3), 0.02)
    p[10::50, 2] = 0.5
    p[10::200, 1], p[10::200, 2] = 0.5, 0.02
    p[:, 0] = 1.0 - p[:, 1:].sum(-1)
    out = metrics.drum_metrics(emb[:1].repeat(1000, 0), p, emb[:1].repeat(1000, 0), p)
    assert out["drums_beat_f1"] == 1.0 and out["drums_downbeat_f1"] == 1.0
    assert len(dbn.decode(p)) == 20


def test_continuity_and_tempo_agreement():
    beats = _bars(8)[:, 0]  # 120 BPM
    assert metrics.continuity(beats, beats) == (1.0, 1.0)
    # Double tempo: AMLt accepts it, CMLt does not.
    double = np.sort(np.concatenate([beats, beats + 0.25]))
    cmlt, amlt = metrics.continuity(beats, double)
    assert cmlt == 0.0 and amlt > 0.95
    assert metrics.continuity(beats, beats[:1]) == (0.0, 0.0)
    assert metrics.tempo_agreement(beats, beats * 1.03) == (1.0, 1.0)  # within 4 %
    assert metrics.tempo_agreement(beats, beats * 1.05) == (0.0, 0.0)
    assert metrics.tempo_agreement(beats, double) == (0.0, 1.0)
    assert metrics.tempo_agreement(beats, beats[::2]) == (0.0, 1.0)
    assert metrics.tempo_agreement(beats, beats[::3]) == (0.0, 0.0)
    assert metrics.tempo_agreement(beats, []) == (0.0, 0.0)
    out = metrics.rhythm_metrics(_bars(8), _bars(8))
    assert tuple(out) == metrics.RHYTHM_NAMES and set(out.values()) == {1.0}


def test_summaries_have_bootstrap_intervals():
    summary = metrics.summarise([1.0, 2.0, 3.0])
    assert summary["mean"] == 2.0 and summary["count"] == 3
    assert summary["std"] == pytest.approx(math.sqrt(2 / 3))
    assert 1.0 <= summary["low"] < 2.0 < summary["high"] <= 3.0
    assert metrics.summarise([0.5] * 10)["low"] == metrics.summarise([0.5] * 10)["high"] == 0.5
    # The interval narrows with more songs and holds the true mean about 95 % of the time.
    rng = np.random.default_rng(1)
    widths, covered = [], 0
    for n in (10, 40, 160):
        low, high = metrics.bootstrap_interval(rng.normal(size=n))
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    for seed in range(200):
        low, high = metrics.bootstrap_interval(
            np.random.default_rng(seed).normal(size=30), num_resamples=500
        )
        covered += low <= 0.0 <= high
    assert 0.88 <= covered / 200 <= 0.99
    with pytest.raises(ValueError):
        metrics.summarise([])
