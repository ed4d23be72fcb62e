"""medleydb: stem routing by label, the three folder layouts, a build of the fake, bad input."""

import collections
import os
import shutil

import numpy as np
import pytest
import soundfile

from jdrum import audio
from jdrum.datasets import multitrack, records
from tfds_builders import testing
from tfds_builders.medleydb import fake_data
from tfds_builders.medleydb import medleydb_dataset_builder as medleydb

CLIP = testing.SMALL_CLIP
SKIPPED = sorted(t.song_id for t in fake_data.TRACKS if t.expect != "kept")
KEPT = sorted(t.song_id for t in fake_data.TRACKS if t.expect == "kept")


def _build(manual_dir, data_dir):
    return testing.build(medleydb.Builder, manual_dir, data_dir)


def _finished(data_dir) -> bool:
    return testing.finished(data_dir, "medleydb")


_records = testing.read_all


def _fails(manual_dir, data_dir, *parts: str, match: str | None = None) -> str:
    """Builds, expecting a one-line DatasetError that names every one of `parts`."""
    with pytest.raises(multitrack.DatasetError, match=match) as info:
        _build(manual_dir, data_dir)
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert str(part) in message
    assert not _finished(data_dir)
    return message


def _stems(**labels) -> dict:
    return {
        "stems": {
            key: {"filename": f"X_STEM_{key[1:]}.wav", "instrument": label}
            for key, label in labels.items()
        }
    }


# --------------------------------------------------------------------------------- policy


def test_label_lists():
    assert len(medleydb.DRUM_LABELS) == len(set(medleydb.DRUM_LABELS)) == 29
    assert set(medleydb.KIT_LABELS) <= set(medleydb.DRUM_LABELS)
    for label in ("vibraphone", "marimba", "xylophone", "glockenspiel", "whistle", "beatboxing"):
        assert label not in medleydb.DRUM_LABELS
    for override in medleydb.STEM_OVERRIDES.values():
        assert override.side in (medleydb.DRUMS, medleydb.DROP)
        assert override.label not in medleydb.DRUM_LABELS  # else the table would not be needed


def test_route_stems_by_label():
    metadata = _stems(
        S01="drum set",
        S02="electric bass",
        S03=["fx/processed sound", "shaker"],  # a list: drums if any label is a drum label
        S04="vibraphone",  # pitched percussion: drumless
        S05="tambourine",
        S06=["synthesizer", "piano"],
        S07="Main System",
    )
    assert medleydb.route_stems("X_Y", metadata) == (
        ["S01", "S03", "S05"],
        ["S02", "S04", "S06", "S07"],
    )
    # Kit or drum machine decides; spelling is the taxonomy's ("high hat"), case is ignored.
    assert medleydb.route_stems("X_Y", _stems(S01="drum machine", S02="synthesizer")) == (
        ["S01"],
        ["S02"],
    )
    assert medleydb.route_stems("X_Y", _stems(S01="High Hat", S02="piano")) == (["S01"], ["S02"])
    assert medleydb.route_stems("X_Y", _stems(S01="hi hat", S02="piano")) is None
    # Percussion without a kit is not a drum track: orchestral, aux percussion, tabla only.
    orchestral = _stems(S01="bass drum", S02="cymbal", S03="timpani", S04="violin section")
    assert medleydb.route_stems("X_Y", orchestral) is None
    assert medleydb.route_stems("X_Y", _stems(S01="auxiliary percussion", S02="piano")) is None
    assert medleydb.route_stems("X_Y", _stems(S01="tabla", S02="sitar")) is None
    assert medleydb.route_stems("X_Y", {"stems": {}}) is None


def test_route_stems_overrides():
    curfews = _stems(S05="drum set", S06="sampler")
    assert medleydb.route_stems("Snowmine_Curfews", curfews) == (["S05", "S06"], [])
    assert medleydb.route_stems("Other_Song", curfews) == (["S05"], ["S06"])
    # A bleeding stem is in neither list.
    volamos = _stems(S01="drum set", S02="acoustic guitar", S03="vibraphone")
    assert medleydb.route_stems("Karachacha_Volamos", volamos) == (["S01"], ["S02"])
    # An override made for another label (other metadata) is not applied.
    renumbered = _stems(S05="drum set", S06="male singer")
    assert medleydb.route_stems("Snowmine_Curfews", renumbered) == (["S05"], ["S06"])


# -------------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("layout", [*fake_data.LAYOUTS, "nested"])
def test_list_tracks_follows_the_policy_in_every_layout(tmp_path, layout):
    root = tmp_path / "MedleyDB" if layout == "nested" else tmp_path
    expected = fake_data.write_fake_medleydb(root, "audio" if layout == "nested" else layout)
    listing = medleydb.list_tracks(str(tmp_path))
    assert sorted(t.song_id for t in listing.tracks) == KEPT
    assert listing.skipped == {fake_data.NO_KIT: SKIPPED}
    for track in listing.tracks:
        want = expected[track.song_id]
        stem_dir = want["folder"] / f"{track.song_id}_STEMS"
        assert track.source == "medleydb"
        assert track.drums == tuple(str(stem_dir / name) for name in want["drums"])
        assert track.drumless == tuple(str(stem_dir / name) for name in want["drumless"])
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in track.drums + track.drumless)
        # Every stem file is on exactly one side, or dropped.
        on_disk = sorted(p.name for p in stem_dir.glob(f"{track.song_id}_STEM_*.wav"))
        assert sorted(want["drums"] + want["drumless"] + want["dropped"]) == on_disk


# ---------------------------------------------------------------------------------- build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("medleydb")
    expected = fake_data.write_fake_medleydb(root, "audio")
    builder = _build(root, tmp_path_factory.mktemp("data"))
    return root, expected, builder, _records(builder)


def test_clips_are_the_drum_stems_and_sum_to_all_stems_but_the_dropped(built):
    root, expected, _, by_split = built
    tracks = {t.song_id: t for t in medleydb.list_tracks(str(root)).tracks}
    sums = {}
    for clips in by_split.values():
        for record in clips:
            song = record["song_id"].decode()
            if song not in sums:
                want = expected[song]
                stem_dir = want["folder"] / f"{song}_STEMS"
                kept = [str(stem_dir / name) for name in want["drums"] + want["drumless"]]
                drums = multitrack.sum_files(tracks[song].drums)
                everything = multitrack.sum_files(kept)  # the dropped stems left out
                peak = max(np.abs(x).max() for x in (drums, everything))
                sums[song] = (drums, everything, max(peak, 1.0))
            drums, everything, scale = sums[song]
            window = slice(int(record["start_sample"]), int(record["start_sample"]) + 2**16)
            got_drums = audio.from_pcm16(record["drums"])
            mix = got_drums + audio.from_pcm16(record["drumless"])
            np.testing.assert_allclose(got_drums, drums[window] / scale, atol=1 / 32768)
            np.testing.assert_allclose(mix, everything[window] / scale, atol=2 / 32768)


def test_clip_counts_skips_and_splits(built):
    _, expected, builder, by_split = built
    clips = collections.Counter()
    splits = collections.defaultdict(set)
    for split, split_records in by_split.items():
        for record in split_records:
            song = record["song_id"].decode()
            assert record["source"] == b"medleydb"
            clips[song] += 1
            splits[song].add(split)
            assert split == records.split_of(multitrack.split_key(song))
    assert all(len(s) == 1 for s in splits.values())  # no song in two splits
    # Every kept track has the clips of its length at 44.1 kHz (the 48 kHz stem of MoodyPlucks
    # was resampled); the short one has none.
    for song in KEPT:
        length = int(round(expected[song]["seconds"] * audio.SAMPLE_RATE))
        starts = audio.fixed_clip_starts(length, CLIP.clip_length, CLIP.hop_length)
        assert clips[song] == len(starts), song
    assert fake_data.SHORT_IDS and set(clips) == set(KEPT) - set(fake_data.SHORT_IDS)
    assert builder.info.metadata["num_tracks"] == len(KEPT) - len(fake_data.SHORT_IDS)
    assert builder.info.metadata["skipped"] == {
        fake_data.NO_KIT: SKIPPED,
        "shorter than one clip": sorted(fake_data.SHORT_IDS),
    }


# -------------------------------------------------------------------------- bad input


def test_missing_stem_file_is_a_one_line_error(tmp_path):
    expected = fake_data.write_fake_medleydb(tmp_path / "mdb")
    missing = expected["Snowmine_Curfews"]["folder"] / "Snowmine_Curfews_STEMS"
    missing = missing / "Snowmine_Curfews_STEM_05.wav"
    missing.unlink()
    _fails(tmp_path / "mdb", tmp_path / "data", missing, match="missing")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"stems: {S01: [unclosed\n", "at line 2, column 1"),
        (b"\xff\xfe\x00\x01 not text", "codec"),
        (b"- a list\n", "not a mapping"),
        (b"title: no stems\n", "no 'stems' mapping"),
        (b"stems:\n  S01: {instrument: drum set}\n", "S01 has no valid 'filename'"),
        (b"stems:\n  S01: {filename: ../x.wav, instrument: drum set}\n", "'filename'"),
        (b"stems:\n  S01: {filename: x.wav, instrument: [drum set, 3]}\n", "'instrument'"),
    ],
)
def test_unreadable_metadata_is_a_one_line_error(tmp_path, content, reason):
    fake_data.write_fake_medleydb(tmp_path / "mdb", "flat")
    path = tmp_path / "mdb" / "Metadata" / "Snowmine_Curfews_METADATA.yaml"
    path.write_bytes(content)
    message = _fails(tmp_path / "mdb", tmp_path / "data", path, match="unreadable metadata YAML")
    assert reason in message


def test_folders_without_tracks_or_metadata(tmp_path):
    fake_data.write_fake_medleydb(tmp_path / "mdb", "v1v2")
    empty_track = tmp_path / "mdb" / "V2" / "Empty_Track"
    empty_track.mkdir()
    _fails(tmp_path / "mdb", tmp_path / "data", empty_track, match="Empty_Track_METADATA.yaml")
    empty_track.rmdir()
    twin = tmp_path / "mdb" / "V2" / "MusicDelta_Rock"
    shutil.copytree(tmp_path / "mdb" / "V1" / "MusicDelta_Rock", twin)
    _fails(tmp_path / "mdb", tmp_path / "data", twin, tmp_path / "mdb" / "V1" / "MusicDelta_Rock")
    (tmp_path / "empty").mkdir()
    _fails(tmp_path / "empty", tmp_path / "data", match="empty or missing folder")
    # Only tracks without drums: nothing to build.
    only_skipped = tmp_path / "skipped"
    fake_data.write_fake_medleydb(only_skipped, "flat")
    for song in KEPT:
        shutil.rmtree(only_skipped / song)
    _fails(only_skipped, tmp_path / "data", fake_data.NO_KIT, match="no usable medleydb track")


def test_stems_of_different_lengths_are_skipped_and_counted(tmp_path):
    expected = fake_data.write_fake_medleydb(tmp_path / "mdb", "flat")
    for song in set(expected) - {"AClassicEducation_NightOwl", "Karachacha_Volamos"}:
        shutil.rmtree(expected[song]["folder"])
    stem = tmp_path / "mdb" / "AClassicEducation_NightOwl" / "AClassicEducation_NightOwl_STEMS"
    stem = stem / "AClassicEducation_NightOwl_STEM_03.wav"
    x, rate = soundfile.read(stem)
    soundfile.write(stem, np.concatenate([x, x]), rate, subtype="PCM_16")
    builder = _build(tmp_path / "mdb", tmp_path / "data")
    assert builder.info.metadata["skipped"] == {
        "stems of different lengths": ["AClassicEducation_NightOwl"]
    }
    songs = {r["song_id"].decode() for rs in _records(builder).values() for r in rs}
    assert songs == {"Karachacha_Volamos"}
    assert _finished(tmp_path / "data")
