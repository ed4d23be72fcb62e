"""musdb18: fake HQ / nested / stem-mp4 folders, routing, official splits, malformed input,
interrupted builds."""

import collections
import glob
import os
import shutil

import numpy as np
import pytest
import soundfile

from jdrum import audio
from jdrum.datasets import multitrack, records
from tfds_builders import testing
from tfds_builders.musdb18 import fake_data
from tfds_builders.musdb18 import musdb18_dataset_builder as musdb18

CLIP = testing.SMALL_CLIP


def _build(manual_dir, data_dir, **overrides):
    return testing.build(musdb18.Builder, manual_dir, data_dir, **overrides)


def _finished(data_dir) -> bool:
    return testing.finished(data_dir, "musdb18")


_records = testing.read_all


@pytest.mark.parametrize("layout", ["hq", "nested"])
def test_list_tracks_routes_drums_and_ignores_other_files(tmp_path, layout):
    fake_data.write_fake_musdb18(tmp_path, layout)
    listing = musdb18.list_tracks(str(tmp_path))
    names = [t.song_id for t in listing.tracks]
    assert sorted(names) == sorted(n for ns in fake_data.SONGS.values() for n in ns)
    for track in listing.tracks:
        assert [os.path.basename(p) for p in track.drums] == ["drums.wav"]
        assert sorted(os.path.basename(p) for p in track.drumless) == [
            "bass.wav",
            "other.wav",
            "vocals.wav",
        ]
        assert all(os.path.basename(os.path.dirname(p)) == track.song_id for p in track.drums)


@pytest.fixture(scope="module")
def hq(tmp_path_factory):
    manual_dir = tmp_path_factory.mktemp("musdb")
    fake_data.write_fake_musdb18(manual_dir, "hq")
    builder = _build(manual_dir, tmp_path_factory.mktemp("data"))
    return manual_dir, builder, _records(builder)


def test_clips_are_the_stems_and_sum_to_all_stems(hq):
    root, _, by_split = hq
    for split, clips in by_split.items():
        for record in clips:
            name = record["song_id"].decode()
            folder = next(root.glob(f"*/{glob.escape(name)}"))
            assert musdb18.official_split(folder.parent.name, name) == split
            stems = {s: audio.load(folder / f"{s}.wav") for s in fake_data.STEMS}
            window = slice(int(record["start_sample"]), int(record["start_sample"]) + 2**16)
            drums = audio.from_pcm16(record["drums"])
            drumless = audio.from_pcm16(record["drumless"])
            np.testing.assert_allclose(drums, stems["drums"][window], atol=1 / 32768)
            everything = sum(stems.values())[window]
            np.testing.assert_allclose(drums + drumless, everything, atol=2 / 32768)


def test_every_song_in_one_split_and_all_songs_present(hq):
    root, builder, by_split = hq
    expected = {p.name for p in root.glob("*/*") if not p.name.startswith(".")}
    songs = collections.defaultdict(set)
    for split, clips in by_split.items():
        for record in clips:
            songs[record["song_id"].decode()].add(split)
    assert set(songs) == set(expected)
    assert all(len(splits) == 1 for splits in songs.values())
    assert builder.info.metadata["num_tracks"] == len(expected)
    assert builder.info.metadata["skipped"] == {}


def test_splits_are_the_official_folders_with_validation_from_train(hq):
    _, _, by_split = hq
    songs = {split: {r["song_id"].decode() for r in clips} for split, clips in by_split.items()}
    assert songs["test"] == set(fake_data.SONGS["test"])  # the whole test folder, nothing else
    assert songs["train"] | songs["validation"] == set(fake_data.SONGS["train"])
    hashed = {n: records.split_of(multitrack.split_key(n)) for n in fake_data.SONGS["train"]}
    assert songs["validation"] == {n for n, split in hashed.items() if split == "validation"}
    # The fake's names fill all three splits, and one test song hashes outside `test`.
    assert all(songs.values())
    assert any(records.split_of(multitrack.split_key(n)) != "test" for n in songs["test"])


def test_validation_is_the_hash_tenth_of_the_train_folder(tmp_path):
    # Real MUSDB18 sizes (100 train, 50 test songs); only the listing is read, no audio.
    for subset, count in (("train", 100), ("test", 50)):
        for i in range(count):
            (tmp_path / subset / f"Artist {i} - {subset.title()} Song {i}").mkdir(parents=True)
    tracks = musdb18.list_tracks(str(tmp_path)).tracks
    assert len(tracks) == 150
    for track in tracks:
        hashed = records.split_of(multitrack.split_key(track.song_id))
        assert track.hashed_split == hashed
        if "Test Song" in track.song_id:
            assert track.split == "test"
        else:  # the hash's validation tenth is validation, its train and test parts train
            assert track.split == ("validation" if hashed == "validation" else "train")
    validation = [t for t in tracks if t.split == "validation"]
    assert 4 <= len(validation) <= 18  # about 10 % of the 100 train songs
    assert any(t.hashed_split == "test" for t in tracks if t.split == "train")
    with pytest.raises(ValueError, match="unknown split"):
        multitrack.Track("x", "musdb18", (), (), assigned_split="valid")


def test_stem_mp4_without_ffmpeg_points_to_the_wav_release(tmp_path, monkeypatch):
    song = tmp_path / "train" / "Some Artist - Song.stem.mp4"
    song.parent.mkdir(parents=True)
    song.write_bytes(b"not decoded here")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(multitrack.DatasetError) as info:
        _build(tmp_path, tmp_path / "data")
    message = str(info.value)
    assert "\n" not in message and str(song) in message and "MUSDB18-HQ" in message
    assert not _finished(tmp_path / "data")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_stem_mp4_release_decodes_with_ffmpeg(tmp_path):
    expected = fake_data.write_fake_musdb18(tmp_path / "musdb", "stems")
    builder = _build(tmp_path / "musdb", tmp_path / "data")
    clips = [r for rs in _records(builder).values() for r in rs]
    assert {r["song_id"].decode() for r in clips} == set(expected)
    for record in clips[:3]:  # AAC is lossy and delays the start: compare levels only
        name = record["song_id"].decode()
        start = int(record["start_sample"])
        original = expected[name]["stems"]["drums"].mean(axis=-1)[start : start + 2**16]
        rms = np.sqrt(np.mean(audio.from_pcm16(record["drums"]) ** 2))
        np.testing.assert_allclose(rms, np.sqrt(np.mean(original**2)), rtol=0.1)


def _one_song(tmp_path):
    fake_data.write_fake_musdb18(tmp_path, "hq")
    return tmp_path / "train" / "M.E.R.C. Music - Knockout"


def test_missing_stem_is_a_one_line_error_and_nothing_looks_built(tmp_path):
    folder = _one_song(tmp_path / "musdb")
    (folder / "bass.wav").unlink()
    with pytest.raises(multitrack.DatasetError) as info:
        _build(tmp_path / "musdb", tmp_path / "data")
    assert "\n" not in str(info.value) and str(folder / "bass.wav") in str(info.value)
    assert not _finished(tmp_path / "data")


def test_unreadable_stem_and_empty_folder_are_one_line_errors(tmp_path):
    folder = _one_song(tmp_path / "musdb")
    (folder / "other.wav").write_text("not audio")
    with pytest.raises(multitrack.DatasetError, match="not a readable audio file") as info:
        _build(tmp_path / "musdb", tmp_path / "data")
    assert str(folder / "other.wav") in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(multitrack.DatasetError, match="empty or missing folder"):
        _build(tmp_path / "empty", tmp_path / "data")
    with pytest.raises(multitrack.DatasetError, match="no train/ or test/"):
        _build(tmp_path / "musdb" / "train", tmp_path / "data")


def test_length_mismatch_is_skipped_and_counted_and_other_rates_resampled(tmp_path):
    folder = _one_song(tmp_path / "musdb")
    x, _ = soundfile.read(folder / "vocals.wav")
    soundfile.write(folder / "vocals.wav", np.concatenate([x, x]), 44_100)
    other = tmp_path / "musdb" / "test" / "Juliet's Rescue - Heartbeats" / "other.wav"
    y, _ = soundfile.read(other)
    soundfile.write(other, audio.resample(y.mean(axis=-1), 44_100, 48_000), 48_000)
    builder = _build(tmp_path / "musdb", tmp_path / "data")
    assert builder.info.metadata["skipped"] == {
        "stems of different lengths": ["M.E.R.C. Music - Knockout"]
    }
    songs = {r["song_id"].decode() for rs in _records(builder).values() for r in rs}
    assert "Juliet's Rescue - Heartbeats" in songs and "M.E.R.C. Music - Knockout" not in songs


def test_interrupted_build_reruns_to_every_example_once(tmp_path, monkeypatch):
    fake_data.write_fake_musdb18(tmp_path / "musdb", "hq")
    complete = [
        (r["song_id"], int(r["clip_index"]))
        for rs in _records(_build(tmp_path / "musdb", tmp_path / "reference")).values()
        for r in rs
    ]
    calls = []
    track_clips = multitrack.track_clips

    def interrupted(track, clip):
        calls.append(track.song_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return track_clips(track, clip)

    monkeypatch.setattr(multitrack, "track_clips", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _build(tmp_path / "musdb", tmp_path / "data")
    assert not _finished(tmp_path / "data")
    monkeypatch.setattr(multitrack, "track_clips", track_clips)
    rerun = [
        (r["song_id"], int(r["clip_index"]))
        for rs in _records(_build(tmp_path / "musdb", tmp_path / "data")).values()
        for r in rs
    ]
    assert len(rerun) == len(set(rerun)) and sorted(rerun) == sorted(complete)


def test_process_pool_build_equals_one_process(tmp_path, hq):
    root, _, by_split = hq
    pooled = _records(_build(root, tmp_path, num_workers=2))
    assert pooled.keys() == by_split.keys()
    for split, clips in by_split.items():
        assert len(pooled[split]) == len(clips)
        for a, b in zip(clips, pooled[split], strict=True):
            assert a["song_id"] == b["song_id"] and a["clip_index"] == b["clip_index"]
            np.testing.assert_array_equal(a["drums"], b["drums"])
            np.testing.assert_array_equal(a["drumless"], b["drumless"])
