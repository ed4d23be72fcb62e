"""slakh2100: routing, the MIDI tempo map and notes, the redux / flat layouts, the built clips,
malformed downloads."""

import collections
import shutil

import mido
import numpy as np
import pytest

from jdrum import audio
from jdrum.datasets import multitrack, records
from tfds_builders import testing
from tfds_builders.slakh2100 import fake_data
from tfds_builders.slakh2100 import slakh2100_dataset_builder as slakh

CLIP = testing.SMALL_CLIP
SR = audio.SAMPLE_RATE
# The fake tempo map's beats, worked out by hand: (time s, position in bar, BPM of the beat).
# 4/4 at 120 BPM (0.5 s), 150 BPM (0.4 s) from 1.5 s, 3/4 from bar 3 (3.5 s), 6/8 from 5.9 s:
# a dotted quarter beat of 720 ticks = 0.6 s, two a bar, 100 beats a minute.
FAKE_BEATS = (
    (0.0, 1, 120),
    (0.5, 2, 120),
    (1.0, 3, 120),
    (1.5, 4, 150),
    (1.9, 1, 150),
    (2.3, 2, 150),
    (2.7, 3, 150),
    (3.1, 4, 150),
    (3.5, 1, 150),
    (3.9, 2, 150),
    (4.3, 3, 150),
    (4.7, 1, 150),
    (5.1, 2, 150),
    (5.5, 3, 150),
    (5.9, 1, 100),
    (6.5, 2, 100),
)


def _build(manual_dir, data_dir, **kw):
    return testing.build(slakh.Builder, manual_dir, data_dir, slakh.SlakhConfig, **kw)


def _fails(manual_dir, data_dir, *parts, match=None) -> str:
    """Builds, expecting a one-line DatasetError that names every one of `parts`."""
    with pytest.raises(multitrack.DatasetError, match=match) as info:
        _build(manual_dir, data_dir)
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert str(part) in message
    assert not testing.finished(data_dir, "slakh2100")
    return message


def _stems(**stems) -> dict:
    return {"stems": stems}


# -------------------------------------------------------------------------------- routing


def test_route_stems():
    kit = {"inst_class": "Drums", "is_drum": True, "audio_rendered": True}
    metadata = _stems(
        S00={"inst_class": "Piano", "is_drum": False, "audio_rendered": True},
        S01=kit,
        S02={"inst_class": "Chromatic Percussion", "is_drum": False, "audio_rendered": True},
        S03={"inst_class": "Drums", "is_drum": False, "audio_rendered": True},  # by its class
        S04={"inst_class": "Percussive", "is_drum": False, "audio_rendered": False},
        S05={"inst_class": "Bass", "is_drum": False, "audio_rendered": False},
    )
    assert slakh.route_stems(metadata) == (["S01", "S03"], ["S00", "S02"])
    # A stem whose file exists is rendered, whatever its flag says.
    assert slakh.route_stems(metadata, frozenset({"S05"})) == (
        ["S01", "S03"],
        ["S00", "S02", "S05"],
    )
    unrendered_kit = _stems(S00=dict(kit, audio_rendered=False), S01={"audio_rendered": True})
    assert slakh.route_stems(unrendered_kit) is None
    assert slakh.route_stems(unrendered_kit, frozenset({"S00"})) == (["S00"], ["S01"])


# ----------------------------------------------------------------------------------- MIDI


def test_beat_grid_is_the_tempo_map_and_notes_the_note_ons(tmp_path):
    expected = fake_data.write_fake_slakh(tmp_path)
    folder = expected["Track01501"]["folder"]
    tempo_map, notes = slakh.read_midi(str(folder / "MIDI" / "S03.mid"))
    assert tempo_map.tempos == fake_data.TEMPOS and tempo_map.signatures == fake_data.SIGNATURES
    beats, tempo = slakh.beat_grid(tempo_map, fake_data.SECONDS)
    want = np.array(FAKE_BEATS, np.float64)
    np.testing.assert_allclose(beats[:, 0], want[:, 0], atol=1e-9)
    np.testing.assert_array_equal(beats[:, 1], want[:, 1])
    np.testing.assert_allclose(tempo, want[:, 2])
    np.testing.assert_allclose(notes, fake_data.drum_notes(fake_data._kit(fake_data.RIDE)))
    # No tempo or time signature: 120 BPM in 4/4.
    bare = mido.MidiFile(type=1, ticks_per_beat=96)
    bare.tracks.append(mido.MidiTrack([mido.Message("note_on", note=36, velocity=1, time=96)]))
    bare.save(tmp_path / "bare.mid")
    tempo_map, notes = slakh.read_midi(str(tmp_path / "bare.mid"))
    beats, tempo = slakh.beat_grid(tempo_map, 2.1)
    np.testing.assert_allclose(beats, [[0, 1], [0.5, 2], [1, 3], [1.5, 4], [2, 1]])
    np.testing.assert_allclose(tempo, 120.0)
    np.testing.assert_allclose(notes, [[0.5, 36, 1]])


# -------------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("layout", fake_data.LAYOUTS)
def test_list_tracks_follows_the_policy(tmp_path, layout):
    expected = fake_data.write_fake_slakh(tmp_path, layout)
    listing = slakh.list_tracks(str(tmp_path))
    assert [t.song_id for t in listing.tracks] == list(fake_data.KEPT)
    skipped = collections.defaultdict(list)
    for song, want in expected.items():
        if want["status"] != "kept":
            skipped[want["status"]].append(song)
    assert listing.skipped == skipped
    for track in listing.tracks:
        want = expected[track.song_id]
        assert track.source == "slakh2100"
        assert sorted(track.drums) == sorted(want["drums"])
        assert sorted(track.drumless) == sorted(want["drumless"])
        assert track.assigned_split == want["split"]
        np.testing.assert_allclose(track.drum_notes, want["notes"], atol=1e-6)
        np.testing.assert_allclose(track.true_beats, np.array(FAKE_BEATS)[:, :2], atol=1e-6)


# ---------------------------------------------------------------------------------- build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("slakh")
    expected = fake_data.write_fake_slakh(root)
    builder = _build(root, tmp_path_factory.mktemp("data"))
    return root, expected, builder, testing.read_all(builder)


def test_clips_are_the_drum_stems_and_sum_to_the_routed_stems(built):
    _, expected, _, by_split = built
    sums = {}
    for record in (r for rs in by_split.values() for r in rs):
        song = record["song_id"].decode()
        if song not in sums:
            want = expected[song]
            drums = multitrack.sum_files(want["drums"])
            everything = multitrack.sum_files(want["drums"] + want["drumless"])
            sums[song] = (drums, everything)
        drums, everything = sums[song]
        window = slice(int(record["start_sample"]), int(record["start_sample"]) + 2**16)
        got = audio.from_pcm16(record["drums"])
        np.testing.assert_allclose(got, drums[window], atol=1 / 32768)
        mix = got + audio.from_pcm16(record["drumless"])
        np.testing.assert_allclose(mix, everything[window], atol=2 / 32768)


def test_true_beats_tempo_and_drum_notes_follow_the_midi(built):
    _, expected, _, by_split = built
    beats = np.array(FAKE_BEATS, np.float64)
    for record in (r for rs in by_split.values() for r in rs):
        start = int(record["start_sample"])
        inside = (np.round(beats[:, 0] * SR) >= start) & (
            np.round(beats[:, 0] * SR) < start + CLIP.clip_length
        )
        want = beats[inside] - [start / SR, 0, 0]
        got = record["true_beats"]
        assert got.shape == (len(want), 2)
        np.testing.assert_allclose(got[:, 0], want[:, 0], atol=1e-3)  # to 1 ms
        np.testing.assert_array_equal(got[:, 1], want[:, 1])
        assert record["tempo"] == pytest.approx(np.median(want[:, 2]))
        notes = expected[record["song_id"].decode()]["notes"]
        samples = np.round(notes[:, 0] * SR)
        in_clip = notes[(samples >= start) & (samples < start + CLIP.clip_length)]
        np.testing.assert_allclose(record["drum_notes"], in_clip - [start / SR, 0, 0], atol=1e-3)
        assert record["drum_notes"].shape[0] > 0


def test_official_splits_clip_counts_and_skips(built):
    _, expected, builder, by_split = built
    splits = collections.defaultdict(set)
    clips = collections.Counter()
    for split, split_records in by_split.items():
        for record in split_records:
            song = record["song_id"].decode()
            assert record["source"] == b"slakh2100"
            splits[song].add(split)
            clips[song] += 1
    assert all(len(s) == 1 for s in splits.values())  # no song in two splits
    assert {song: s.pop() for song, s in splits.items()} == {
        song: expected[song]["split"] for song in fake_data.KEPT
    }
    starts = audio.fixed_clip_starts(int(fake_data.SECONDS * SR), CLIP.clip_length, CLIP.hop_length)
    assert clips == {song: len(starts) for song in fake_data.KEPT}
    assert builder.info.metadata["num_tracks"] == len(fake_data.KEPT)
    assert builder.info.metadata["skipped"] == {
        fake_data.NO_DRUMS: ["Track00002"],
        fake_data.OMITTED: ["Track00049"],
    }
    assert "drum_notes" in builder.info.features.keys()


def test_flat_layout_is_hash_split_and_rebuilds_after_an_interruption(tmp_path, monkeypatch):
    fake_data.write_fake_slakh(tmp_path / "baby", "flat")
    calls = []
    track_clips = multitrack.track_clips

    def interrupted(track, clip):
        calls.append(track.song_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return track_clips(track, clip)

    monkeypatch.setattr(multitrack, "track_clips", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _build(tmp_path / "baby", tmp_path / "data")
    assert not testing.finished(tmp_path / "data", "slakh2100")
    monkeypatch.setattr(multitrack, "track_clips", track_clips)
    builder = _build(tmp_path / "baby", tmp_path / "data")
    keys = []
    for split, split_records in testing.read_all(builder).items():
        for record in split_records:
            song = record["song_id"].decode()
            assert split == records.split_of(multitrack.split_key(song))
            keys.append((song, int(record["clip_index"])))
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} == set(fake_data.KEPT)


# ---------------------------------------------------------------------------- bad input


def test_a_rendered_stem_or_drum_midi_missing_is_a_one_line_error(tmp_path):
    expected = fake_data.write_fake_slakh(tmp_path / "slakh")
    folder = expected["Track00001"]["folder"]
    (folder / "stems" / "S02.flac").unlink()  # listed as rendered, absent
    _fails(tmp_path / "slakh", tmp_path / "data", folder / "stems" / "S02.flac", match="missing")
    shutil.rmtree(folder / "stems")  # the whole stems/ folder
    _fails(tmp_path / "slakh", tmp_path / "data", folder / "stems" / "S01.flac", match="missing")
    folder = expected["Track01876"]["folder"]
    (folder / "MIDI" / "S00.mid").unlink()
    shutil.rmtree(expected["Track00001"]["folder"])
    _fails(tmp_path / "slakh", tmp_path / "data", folder / "MIDI" / "S00.mid", match="missing")
    (folder / "MIDI" / "S00.mid").write_bytes(b"MThd\x00\x00")
    _fails(tmp_path / "slakh", tmp_path / "data", folder / "MIDI" / "S00.mid", match="MIDI")


def test_a_stem_the_metadata_does_not_list_is_a_one_line_error(tmp_path):
    expected = fake_data.write_fake_slakh(tmp_path / "slakh", "flat")
    stems = expected["Track01501"]["folder"] / "stems"
    shutil.copy(stems / "S01.flac", stems / "S07.flac")
    _fails(tmp_path / "slakh", tmp_path / "data", stems / "S07.flac", match="does not list")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"stems: {S00: [unclosed\n", "at line 2, column 1"),
        (b"\xff\xfe\x00\x01 not text", "codec"),
        (b"- a list\n", "not a mapping"),
        (b"UUID: abc\n", "no 'stems' mapping"),
        (b"stems:\n  drums: {is_drum: true}\n", "not S<number>"),
        (b"stems:\n  S00: {is_drum: 'yes', audio_rendered: true}\n", "is_drum"),
    ],
)
def test_unreadable_metadata_is_a_one_line_error(tmp_path, content, reason):
    expected = fake_data.write_fake_slakh(tmp_path / "slakh")
    path = expected["Track01876"]["folder"] / "metadata.yaml"
    path.write_bytes(content)
    message = _fails(tmp_path / "slakh", tmp_path / "data", path, match="unreadable metadata")
    assert reason in message


def test_folders_without_metadata_twins_and_nothing_usable(tmp_path):
    expected = fake_data.write_fake_slakh(tmp_path / "slakh")
    metadata = expected["Track01501"]["folder"] / "metadata.yaml"
    metadata.unlink()
    _fails(tmp_path / "slakh", tmp_path / "data", metadata, match="missing")
    shutil.rmtree(expected["Track01501"]["folder"])
    twin = expected["Track00001"]["folder"].parent.parent / "test" / "Track00001"
    shutil.copytree(expected["Track00001"]["folder"], twin)
    _fails(tmp_path / "slakh", tmp_path / "data", twin, expected["Track00001"]["folder"])
    (tmp_path / "empty").mkdir()
    _fails(tmp_path / "empty", tmp_path / "data", match="empty or missing folder")
    (tmp_path / "other" / "notes").mkdir(parents=True)
    _fails(tmp_path / "other", tmp_path / "data", match="the Slakh2100 layout")
    # Only tracks without drums or omitted: nothing to build.
    only_skipped = tmp_path / "skipped"
    fake_data.write_fake_slakh(only_skipped, "flat")
    for song in fake_data.KEPT:
        shutil.rmtree(only_skipped / song)
    _fails(only_skipped, tmp_path / "data", fake_data.NO_DRUMS, match="no usable slakh2100")
