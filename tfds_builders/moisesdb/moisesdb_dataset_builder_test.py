"""moisesdb: source routing, the three folder layouts, the built clips, malformed downloads."""

import collections
import shutil

import numpy as np
import pytest

from jdrum import audio
from jdrum.datasets import multitrack, records
from tfds_builders import testing
from tfds_builders.moisesdb import fake_data
from tfds_builders.moisesdb import moisesdb_dataset_builder as moisesdb

CLIP = testing.SMALL_CLIP
KEPT = sorted(fake_data.KEPT)
SKIPPED = sorted(s.song_id for s in fake_data.SONGS if s.expect != "kept")


def _build(manual_dir, data_dir):
    return testing.build(moisesdb.Builder, manual_dir, data_dir)


def _fails(manual_dir, data_dir, *parts, match=None) -> str:
    """Builds, expecting a one-line DatasetError that names every one of `parts`."""
    with pytest.raises(multitrack.DatasetError, match=match) as info:
        _build(manual_dir, data_dir)
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert str(part) in message
    assert not testing.finished(data_dir, "moisesdb")
    return message


# -------------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    "stem, track_type, side",
    [
        ("drums", "kick drum", "drums"),
        ("drums", "overheads", "drums"),
        ("drums", "drum machine", "drums"),
        ("percussion", fake_data.ATONAL, "drums"),
        ("percussion", fake_data.PITCHED, "drumless"),
        ("percussion", "", "drums"),  # unlabelled percussion: unpitched, as MedleyDB's aux
        ("other", "click track", "drop"),
        ("other", "fx/processed sound, scratches, gun shots, explosions etc", "drumless"),
        ("vocals", "other (vocoder, beatboxing etc)", "drumless"),
        ("other_keys", "synth pad", "drumless"),
        ("bass", "bass guitar", "drumless"),
    ],
)
def test_source_side(stem, track_type, side):
    assert moisesdb.source_side(stem, track_type) == side


def test_a_song_without_a_drums_stem_is_skipped():
    percussion = {"id": "a", "extension": "wav", "trackType": fake_data.ATONAL}
    data = {"stems": [{"stemName": "percussion", "tracks": [percussion]}]}
    assert moisesdb.route_sources(data) is None
    data["stems"].append({"stemName": "drums", "tracks": []})  # an empty drums stem
    assert moisesdb.route_sources(data) is None
    data["stems"][1]["tracks"].append({"id": "b", "extension": "wav", "trackType": "toms"})
    assert moisesdb.route_sources(data) == ([("percussion", "a.wav"), ("drums", "b.wav")], [], [])


@pytest.mark.parametrize("layout", fake_data.LAYOUTS)
def test_list_tracks_follows_the_policy_in_every_layout(tmp_path, layout):
    expected = fake_data.write_fake_moisesdb(tmp_path, layout)
    listing = moisesdb.list_tracks(str(tmp_path))
    assert [t.song_id for t in listing.tracks] == KEPT
    assert listing.skipped == {fake_data.NO_DRUMS: SKIPPED}
    for track in listing.tracks:
        want = expected[track.song_id]
        assert track.source == "moisesdb" and track.assigned_split is None
        assert sorted(track.drums) == sorted(want["drums"])
        assert sorted(track.drumless) == sorted(want["drumless"])
        # Every source file on disk is on exactly one side, or dropped.
        on_disk = sorted(str(p) for p in want["folder"].glob("*/*.wav"))
        assert sorted(want["drums"] + want["drumless"] + want["drop"]) == on_disk


# ---------------------------------------------------------------------------------- build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("moisesdb")
    expected = fake_data.write_fake_moisesdb(root)
    builder = _build(root, tmp_path_factory.mktemp("data"))
    return root, expected, builder, testing.read_all(builder)


def test_clips_are_the_drum_sources_and_sum_to_the_routed_sources(built):
    _, expected, _, by_split = built
    sums = {}
    for record in (r for rs in by_split.values() for r in rs):
        song = record["song_id"].decode()
        if song not in sums:
            want = expected[song]
            drums = multitrack.sum_files(want["drums"])  # the 48 kHz source resampled
            everything = multitrack.sum_files(want["drums"] + want["drumless"])  # no click
            sums[song] = (drums, everything)
        drums, everything = sums[song]
        window = slice(int(record["start_sample"]), int(record["start_sample"]) + 2**16)
        got = audio.from_pcm16(record["drums"])
        np.testing.assert_allclose(got, drums[window], atol=1 / 32768)
        mix = got + audio.from_pcm16(record["drumless"])
        np.testing.assert_allclose(mix, everything[window], atol=2 / 32768)


def test_splits_clip_counts_and_skips(built):
    _, _, builder, by_split = built
    splits = collections.defaultdict(set)
    clips = collections.Counter()
    for split, split_records in by_split.items():
        for record in split_records:
            song = record["song_id"].decode()
            assert record["source"] == b"moisesdb"
            assert split == records.split_of(multitrack.split_key(song))
            assert record["true_beats"].shape == (0, 2) and record["tempo"] == 0
            splits[song].add(split)
            clips[song] += 1
    assert all(len(s) == 1 for s in splits.values())  # no song in two splits
    n = int(round(fake_data.SECONDS * audio.SAMPLE_RATE))
    starts = audio.fixed_clip_starts(n, CLIP.clip_length, CLIP.hop_length)
    assert clips == {song: len(starts) for song in KEPT}
    assert builder.info.metadata["num_tracks"] == len(KEPT)
    assert builder.info.metadata["skipped"] == {fake_data.NO_DRUMS: SKIPPED}
    assert "drum_notes" not in builder.info.features.keys()


# ---------------------------------------------------------------------------- bad input


def _kept_song(expected: dict) -> dict:
    return expected[fake_data.SONGS[0].song_id]


def test_a_listed_source_or_stem_folder_missing_is_a_one_line_error(tmp_path):
    song = _kept_song(fake_data.write_fake_moisesdb(tmp_path / "mdb"))
    source = song["drumless"][0]
    shutil.move(source, tmp_path / "elsewhere.wav")
    _fails(tmp_path / "mdb", tmp_path / "data", source, match="missing")
    shutil.move(tmp_path / "elsewhere.wav", source)
    shutil.rmtree(song["folder"] / "drums")  # a whole stem
    _fails(tmp_path / "mdb", tmp_path / "data", song["folder"] / "drums", match="missing")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b'{"stems": [', "at line 1, column 12"),
        (b"\xff\xfe\x00\x01 not text", "codec"),
        (b"[1, 2]", "not an object"),
        (b'{"song": "x"}', "no 'stems' list"),
        (b'{"stems": [{"tracks": []}]}', "stem 0 has no valid 'stemName'"),
        (b'{"stems": [{"stemName": "../x", "tracks": []}]}', "'stemName'"),
        (b'{"stems": [{"stemName": "drums"}]}', "no 'tracks' list"),
        (b'{"stems": [{"stemName": "drums", "tracks": [{"id": "a"}]}]}', "'extension'"),
        (
            b'{"stems": [{"stemName": "drums", "tracks": '
            b'[{"id": "a", "extension": "wav", "has_bleed": "no"}]}]}',
            "'has_bleed'",
        ),
    ],
)
def test_unreadable_data_json_is_a_one_line_error(tmp_path, content, reason):
    song = _kept_song(fake_data.write_fake_moisesdb(tmp_path / "mdb", "provider"))
    path = song["folder"] / "data.json"
    path.write_bytes(content)
    message = _fails(tmp_path / "mdb", tmp_path / "data", path, match="unreadable data.json")
    assert reason in message


def test_folders_without_data_json_twins_and_nothing_usable(tmp_path):
    expected = fake_data.write_fake_moisesdb(tmp_path / "mdb")
    song = _kept_song(expected)
    stray = song["folder"].parent / "not-a-song"
    stray.mkdir()
    _fails(tmp_path / "mdb", tmp_path / "data", stray / "data.json", match="missing")
    stray.rmdir()
    twin = tmp_path / "mdb" / "moisesdb" / "moisesdb_v0.2" / song["folder"].name
    shutil.copytree(song["folder"], twin)
    _fails(tmp_path / "mdb", tmp_path / "data", twin, song["folder"])
    (tmp_path / "empty").mkdir()
    _fails(tmp_path / "empty", tmp_path / "data", match="empty or missing folder")
    (tmp_path / "other" / "a" / "b").mkdir(parents=True)
    _fails(tmp_path / "other", tmp_path / "data", match="the MoisesDB layout")
    # Only songs without drums: nothing to build.
    only_skipped = tmp_path / "skipped"
    for want in fake_data.write_fake_moisesdb(only_skipped, "flat").values():
        if want["status"] == "kept":
            shutil.rmtree(want["folder"])
    _fails(only_skipped, tmp_path / "data", fake_data.NO_DRUMS, match="no usable moisesdb")
