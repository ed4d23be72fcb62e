"""madmom 0.16.1 through jdrum.beat.madmom_compat on today's Python and NumPy."""

import collections

import mir_eval
import numpy as np
import pytest

from jdrum.beat import dbn
from jdrum.beat.madmom_compat import madmom
from jdrum.datasets import synth


def test_shims_restore_what_madmom_uses():
    assert collections.MutableSequence is collections.abc.MutableSequence
    assert np.float is float and np.int is int
    np.testing.assert_array_equal(np.in1d([[1, 5], [2, 7]], [2, 5]), [False, True, True, False])
    assert madmom.__version__ == "0.16.1"


def test_dbn_with_several_meters_decodes():
    # Several bar lengths give HMM paths of different lengths: the "inhomogeneous shape"
    # failure of NumPy >= 1.24 lived exactly here.
    fps, period = 100, 50
    act = np.full((1000, 2), 0.01)
    act[10::period, 0] = 0.9
    act[10 :: 4 * period, 1] = 0.9
    act[10 :: 4 * period, 0] = 0.05
    beats = dbn.dbn_beats(act, beats_per_bar=(3, 4))
    assert beats.shape[1] == 2 and len(beats) >= 15
    np.testing.assert_allclose(np.diff(beats[:, 0]), period / fps, atol=0.02)
    downbeats = beats[beats[:, 1] == 1, 0]
    np.testing.assert_allclose(np.diff(downbeats), 4 * period / fps, atol=0.03)


# The first six synthstems songs: 93-193 BPM, both meters.
TRACKED_SEEDS = (0, 1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def tracked_songs():
    config = synth.SynthConfig(min_seconds=20.0, max_seconds=25.0)
    return [synth.make_song(seed, config) for seed in TRACKED_SEEDS]


def test_downbeat_tracker_follows_synthstems_mixes(tracked_songs):
    scores = []
    for song in tracked_songs:
        estimated = dbn.track_beats(song.mix)
        scores.append(mir_eval.beat.f_measure(song.beats[:, 0], estimated[:, 0], 0.07))
    meters = {song.plan.meter for song in tracked_songs}
    assert meters == {3, 4}
    assert min(scores) >= 0.9, scores
