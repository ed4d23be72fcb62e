"""The measuring instrument itself: the madmom tracker and madmom's default DBN over whole
signals (`jdrum.beat.dbn.decode`) as every table uses them. Each test fails when the instrument
breaks: a ceiling that real drums must reach, clicks it must follow, and a floor that
mismatched beats must fall to."""

import dataclasses

import numpy as np
import pytest

from jdrum import audio, data, runs
from jdrum.beat import dbn, metrics
from jdrum.datasets import synth
from jdrum.inference import evaluation

SR = audio.SAMPLE_RATE
# Held-out synthstems/eval songs 0-7: 4/4 and 3/4, a tempo and a groove change.
EVAL_SONGS = tuple(range(8))


def _tracked(stems_BxL) -> list[evaluation.Tracked]:
    tracker = dataclasses.replace(runs.tracker("madmom"), batch_size=len(stems_BxL))
    embedding, probabilities = tracker(np.stack(stems_BxL))
    return [
        evaluation.Tracked(x, e, p, dbn.decode(p))
        for x, e, p in zip(stems_BxL, embedding, probabilities, strict=True)
    ]


@pytest.fixture(scope="module")
def held_out():
    """(songs, what the tracker sees in their real drum stems) for synthstems/eval songs."""
    config = data.builder("synthstems/eval", "unused").builder_config
    songs = [synth.render_song(config.plan(i), config.synth_config) for i in EVAL_SONGS]
    assert {song.plan.meter for song in songs} == {3, 4}
    assert any(song.plan.change for song in songs)
    # One length, so that the songs are tracked as one batch: the shortest song's.
    length = min(len(song.drums) for song in songs)
    tracked = _tracked([song.drums[:length] for song in songs])
    beats = [song.beats[song.beats[:, 0] < length / SR] for song in songs]
    return beats, tracked


def test_real_drum_stems_of_held_out_songs_reach_the_ceiling(held_out):
    true_beats, tracked = held_out
    f1 = [metrics.beat_f1(t[:, 0], d.beats[:, 0]) for t, d in zip(true_beats, tracked, strict=True)]
    assert np.mean(f1) >= 0.85, f1
    assert min(f1) >= 0.3, f1  # a shuffle may be tracked at another metrical level


def _click_track(
    bpm: float, seconds: float = 20.0, meter: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """A metronome: 20 ms decaying 1.5 kHz blips (downbeats at 2.5 kHz, louder)."""
    times = 0.5 + np.arange(0.0, seconds - 1.0, 60.0 / bpm)
    x = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.02 * SR)) / SR
    for i, time_s in enumerate(times):
        downbeat = i % meter == 0
        blip = np.sin(2 * np.pi * (2500.0 if downbeat else 1500.0) * t) * np.exp(-t / 0.004)
        start = int(round(time_s * SR))
        x[start : start + len(t)] += (0.9 if downbeat else 0.5) * blip.astype(np.float32)
    return x, times


@pytest.mark.parametrize("bpm", [100, 140, 179])
def test_click_tracks_are_followed(bpm):
    x, times = _click_track(bpm)
    (tracked,) = _tracked([x])
    assert metrics.beat_f1(times, tracked.beats[:, 0]) >= 0.95
    assert metrics.tempo_agreement(times, tracked.beats[:, 0])[0] == 1.0


def test_drums_score_far_lower_against_another_songs_beats(held_out):
    """The floor's pairing (`evaluation.take_metrics` against another song's references): drums
    that follow their own song fall to chance against the beats of another."""
    true_beats, tracked = held_out
    own, other = [], []
    for i, drums in enumerate(tracked):
        j = (i - 1) % len(tracked)
        own.append(evaluation.take_metrics(drums, evaluation.Reference(true_beats[i], drums)))
        other.append(
            evaluation.take_metrics(drums, evaluation.Reference(true_beats[j], tracked[j]))
        )
    own_f1 = np.mean([v["beat_f1"] for v in own])
    other_f1 = np.mean([v["beat_f1"] for v in other])
    assert other_f1 < 0.5 * own_f1, (own_f1, other_f1)
    assert np.mean([v["drums_beat_f1"] for v in own]) == 1.0  # the real drums against themselves
    assert np.mean([v["tempo"] for v in other]) < np.mean([v["tempo"] for v in own])
    # The sound measures: the real drums match themselves, another song's drums do not.
    assert all(v["stft_distance"] == 0.0 and v["onset_f1"] == 1.0 for v in own)
    assert min(v["stft_distance"] for v in other) > 1.0
    assert np.mean([v["onset_f1"] for v in other]) < 0.6
