"""jdrum.datasets.records: the clip routine every builder shares, and the recording-level split."""

import collections

import mir_eval
import numpy as np
import pytest

from jdrum import audio
from jdrum.datasets import records, synth

SR = audio.SAMPLE_RATE
CLIP = 2**17


@pytest.fixture(scope="module")
def song():
    return synth.make_song(4, synth.SynthConfig(min_seconds=12.0, max_seconds=14.0))


def _clips(song, **kwargs):
    config = records.ClipConfig(clip_length=CLIP, hop_length=CLIP // 2, **kwargs)
    return config, list(
        records.song_clips(
            "s1", "test", song.drums, song.drumless, config, true_beats=song.beats, tempo=song.bpm
        )
    )


def test_fixed_windows_cover_the_song(song):
    config, clips = _clips(song)
    starts = [int(r["start_sample"]) for _, r in clips]
    assert starts == list(range(0, len(song.mix) - CLIP + 1, CLIP // 2))
    assert [k for k, _ in clips] == [f"s1/{i:04d}" for i in range(len(clips))]
    for _, record in clips:
        start = int(record["start_sample"])
        np.testing.assert_array_equal(
            record["drumless"], audio.to_pcm16(song.drumless[start : start + CLIP])
        )
        assert record["beat_embedding"].shape == (config.beat_frames, 50)
        assert not record["beat_embedding"].any() and record["beats"].shape == (0, 2)
        np.testing.assert_allclose(record["tempo"], song.bpm[0], rtol=1e-6)


def test_silent_drum_clips_are_dropped_and_indices_stay_contiguous(song):
    drums = song.drums.copy()
    drums[len(drums) // 2 :] = 0.0
    config = records.ClipConfig(clip_length=CLIP, hop_length=CLIP // 2)
    kept = list(records.song_clips("s1", "test", drums, song.drumless, config))
    all_clips = audio.fixed_clip_starts(len(drums), CLIP, CLIP // 2)
    assert 0 < len(kept) < len(all_clips)
    assert all(int(r["start_sample"]) < len(drums) // 2 for _, r in kept)
    assert [int(r["clip_index"]) for _, r in kept] == list(range(len(kept)))
    keep_all = records.ClipConfig(clip_length=CLIP, hop_length=CLIP // 2, drop_silent_drums=False)
    assert len(list(records.song_clips("s1", "t", drums, song.drumless, keep_all))) == len(
        all_clips
    )


def test_shorter_stem_is_zero_padded(song):
    config = records.ClipConfig(clip_length=CLIP, hop_length=CLIP)
    drumless = song.drumless[: len(song.drumless) // 2]
    clips = list(records.song_clips("s1", "t", song.drums, drumless, config))
    assert len(clips) == len(audio.fixed_clip_starts(len(song.drums), CLIP, CLIP))
    assert not clips[-1][1]["drumless"].any()


def test_downbeat_clips_start_on_true_downbeats(song):
    _, clips = _clips(song, segmentation="downbeat")
    downbeats = np.round(song.beats[song.beats[:, 1] == 1, 0] * SR)
    starts = np.array([int(r["start_sample"]) for _, r in clips])
    assert len(starts) >= 2 and np.isin(starts, downbeats).all()
    assert np.all(np.diff(starts) > CLIP)
    for _, record in clips:  # each clip opens with its downbeat
        np.testing.assert_allclose(record["true_beats"][0], [0.0, 1.0], atol=0.5 / SR)


def test_downbeat_clips_without_truth_use_the_tracker(song):
    config = records.ClipConfig(clip_length=CLIP, hop_length=CLIP, segmentation="downbeat")
    clips = list(records.song_clips("s1", "t", song.drums, song.drumless, config))
    starts = np.array([int(r["start_sample"]) for _, r in clips]) / SR
    assert len(starts) >= 2 and np.all(np.diff(starts) > CLIP / SR)
    # The tracker's downbeats may sit on another beat of the bar, but they sit on beats.
    assert np.abs(starts[:, None] - song.beats[None, :, 0]).min(axis=1).max() < 0.05


def test_madmom_tracker_fills_activations_and_beats(song):
    config, clips = _clips(song, tracker="madmom")
    record = clips[1][1]
    np.testing.assert_allclose(record["beat_activation"].sum(axis=-1), 1.0, atol=1e-5)
    assert record["beat_activation"].min() >= -1e-6
    f = mir_eval.beat.f_measure(record["true_beats"][:, 0], record["beats"][:, 0], 0.07)
    assert f >= 0.8


def test_clip_config_rejects_unknown_settings():
    with pytest.raises(ValueError, match="segmentation"):
        records.ClipConfig(segmentation="bars")
    with pytest.raises(ValueError, match="tracker"):
        records.ClipConfig(tracker="da3")


def test_split_is_a_stable_80_10_10_hash():
    assert records.split_of("synthstems-00000") == records.split_of("synthstems-00000")
    counts = collections.Counter(records.split_of(f"song-{i}") for i in range(20_000))
    np.testing.assert_allclose(
        [counts[s] / 20_000 for s in records.SPLITS], records.SPLIT_FRACTIONS, atol=0.01
    )
    # Pinned values: a change of the hash would silently move recordings between splits.
    assert [records.split_of(f"synthstems-{i:05d}") for i in (0, 15, 17)] == [
        "train",
        "validation",
        "test",
    ]
