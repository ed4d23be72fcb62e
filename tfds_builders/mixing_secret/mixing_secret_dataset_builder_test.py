"""mixing_secret: per-raw-file routing, folder layouts, the built clips, malformed downloads."""

import collections
import os
import shutil

import numpy as np
import pytest

from jdrum import audio
from jdrum.datasets import multitrack, records
from tfds_builders import testing
from tfds_builders.mixing_secret import fake_data
from tfds_builders.mixing_secret import mixing_secret_dataset_builder as ms

CLIP = testing.SMALL_CLIP
SIDES = ("drums", "drumless", "dropped")


def _build(manual_dir, data_dir):
    return testing.build(ms.Builder, manual_dir, data_dir)


def _finished(data_dir) -> bool:
    return testing.finished(data_dir, "mixing_secret")


_records = testing.read_all


def _meta(*stems) -> dict:
    """A YAML's content from (instrument, [raw file names]) pairs."""
    return {
        "version": "3.0",
        "stems": {
            f"S{k:02d}": {
                "component": "",
                "filename": files[0],
                "instrument": instrument,
                "raw": {f"R{j:02d}": {"filename": f} for j, f in enumerate(files, start=1)},
            }
            for k, (instrument, files) in enumerate(stems, start=1)
        },
    }


KIT = ("drum set", ["01_Kick.wav", "02_Snare.wav"])


def _side(routed, name: str) -> str:
    return next(side for side, names in zip(SIDES, routed, strict=True) if name in names)


# ------------------------------------------------------------------------------- routing


def test_kit_files_are_drums_even_when_another_stem_lists_them():  # rule 3a
    routed = ms.route_raw_files(
        _meta(
            ("drum set", ["01_Kick.wav", "03_DrumsFX.wav", "04_SynthKick.wav"]),
            ("fx/processed sound", ["03_DrumsFX.wav", "05_SFX.wav"]),
            ("drum machine", ["04_SynthKick.wav"]),  # drum machine + drum set: the kit wins
        )
    )
    assert routed == (("01_Kick.wav", "03_DrumsFX.wav", "04_SynthKick.wav"), ("05_SFX.wav",), ())


@pytest.mark.parametrize(
    "name, side",
    [
        ("04_Loop.wav", "drums"),
        ("15_DrumLoop 2.wav", "drums"),
        ("06_ShakerLoop.wav", "drums"),
        ("07_Loop1Drums.wav", "drums"),
        ("08_Loop2Percussion.wav", "drums"),
        ("09_SynthLoop1.wav", "drumless"),
        ("10_ElecGtrLoop.wav", "drumless"),
        ("11_GuitarLoop.wav", "drumless"),
        ("12_SFXLoop2.wav", "drumless"),
        ("13_BassLoop.wav", "drumless"),
        ("14_PadLoop.wav", "drumless"),
        ("16_VoxLoop.wav", "drumless"),
        ("17_KeysLoop.wav", "drumless"),
    ],
)
def test_drum_machine_files_are_drums_unless_named_pitched(name, side):  # rule 3b
    assert _side(ms.route_raw_files(_meta(KIT, ("drum machine", [name]))), name) == side
    # The same file in a song without a kit: the song is kept only for a drum loop (rule 2).
    routed = ms.route_raw_files(_meta(("drum machine", [name]), ("piano", ["20_Piano.wav"])))
    assert (routed is not None) == (side == "drums")


def test_files_shared_by_two_stems_are_counted_once():
    routed = ms.route_raw_files(
        _meta(
            KIT,
            ("drum machine", ["05_SynthLoop.wav", "06_Loop3.wav", "07_SFXLoop.wav"]),
            ("synthesizer", ["05_SynthLoop.wav", "08_SynthLead.wav"]),
            ("fx/processed sound", ["06_Loop3.wav", "07_SFXLoop.wav", "08_SynthLead.wav"]),
        )
    )
    drums, drumless, dropped = routed
    assert drums == ("01_Kick.wav", "02_Snare.wav", "06_Loop3.wav")
    assert drumless == ("05_SynthLoop.wav", "07_SFXLoop.wav", "08_SynthLead.wav")
    assert dropped == ()


@pytest.mark.parametrize(
    "label",
    ["tambourine", "break", "fill", "timpani", "gong", "chimes", "roman wardrum", "Congas"],
)
def test_unpitched_percussion_is_drums(label):  # rule 3c (labels compared in lower case)
    assert _side(ms.route_raw_files(_meta(KIT, (label, ["09_Perc.wav"]))), "09_Perc.wav") == "drums"


@pytest.mark.parametrize("label", sorted(ms.NOT_DRUM_LABELS))
def test_pitched_or_effect_labels_that_look_like_drums_are_drumless(label):
    assert label not in ms.PERCUSSION_LABELS and not ms.is_room_label(label)
    routed = ms.route_raw_files(_meta(KIT, (label, ["09_X.wav"])))
    assert _side(routed, "09_X.wav") == "drumless"


@pytest.mark.parametrize(
    "label", ["main system", "room", "room_stereo", "ambience", "ambmono", "amomono", "mainpair"]
)
def test_room_microphones_follow_the_kit(label):  # rule 3d
    assert ms.ROOM_MICS_TO_DRUMS  # the documented default
    with_kit = _meta(KIT, (label, ["10_Room.wav"]))
    assert _side(ms.route_raw_files(with_kit), "10_Room.wav") == "drums"
    off = ms.route_raw_files(with_kit, room_mics_to_drums=False)
    assert _side(off, "10_Room.wav") == "drumless"
    loops_only = ms.route_raw_files(_meta(("drum machine", ["01_Loop.wav"]), (label, ["10_R.wav"])))
    assert _side(loops_only, "10_R.wav") == "drumless"


def test_click_is_dropped_and_label_lists_route_on_any_drum_label():
    routed = ms.route_raw_files(
        _meta(
            KIT,
            ("click", ["11_Click.wav"]),
            (["male singer", "tambourine"], ["12_VoxTamb.wav"]),
            (["acoustic guitar", "male singer"], ["13_GtrVox.wav"]),
        )
    )
    assert routed == (
        ("01_Kick.wav", "02_Snare.wav", "12_VoxTamb.wav"),
        ("13_GtrVox.wav",),
        ("11_Click.wav",),
    )
    assert ms.route_raw_files(_meta((["drum set", "percussion"], ["01_Kit.wav"]))) == (
        ("01_Kit.wav",),
        (),
        (),
    )


@pytest.mark.parametrize(
    "stems",
    [
        # N: a `_STEM_drums.wav` that is an ORTF pair labelled main system.
        [("main system", ["01_ORTF.wav"]), (["cello", "violin"], ["02_Strings.wav"])],
        # P: percussion without a kit.
        [("congas", ["01_Congas.wav"]), ("roman wardrum", ["02_WarDrum.wav"])],
        # M whose loops are all pitched.
        [("drum machine", ["01_SynthLoop.wav"]), ("synthesizer", ["01_SynthLoop.wav"])],
    ],
)
def test_songs_without_kit_or_drum_loops_are_not_routed(stems):  # rule 2
    assert ms.route_raw_files(_meta(*stems)) is None


def test_raw_keys_of_any_width_and_malformed_stems():
    names = [f"{k:02d}_Drum{k}.wav" for k in range(1, 13)]
    raw = {("R010" if k == 10 else f"R{k:02d}"): {"filename": n} for k, n in enumerate(names, 1)}
    raw = dict(sorted(raw.items()))  # YAML order: R01, R010, R02, ...
    metadata = {"stems": {"S01": {"instrument": "drum set", "raw": raw}}}
    assert ms.stem_files(metadata) == [("S01", ("drum set",), tuple(names))]
    assert ms.route_raw_files(metadata) == (tuple(names), (), ())
    for bad in (
        {"stems": {"S01": {"instrument": "drum set", "raw": {"X1": {"filename": "a.wav"}}}}},
        {"stems": {"S01": {"instrument": 3, "raw": {}}}},
        {"stems": {"S01": {"instrument": "drum set", "raw": {"R01": {"filename": "../a.wav"}}}}},
        {"stems": []},
        ["not", "a", "mapping"],
    ):
        with pytest.raises(ValueError):
            ms.route_raw_files(bad)


# -------------------------------------------------------------------------------- layout


def test_find_song_folder_accepts_every_archive_layout(tmp_path):
    for name in (
        "Actions_DevilsWords_Full",
        "JPLantieri_Riesling_Full_2",
        "JPLantieri_Riesling_Full_1",
        "JPLantieri_Riesling_Full_10",
        "KCLBaroque_TelemannLaLyra_Full",
        "Fin_Echoes",
        "JPLantieri_Chardonnay_Full",
        "JPLantieri_ChardonnayLektrixRemix_Full",
        "__MACOSX",
        "._Zwiepack_Air_Full",
    ):
        (tmp_path / name).mkdir()
    (tmp_path / "Zwiepack_Air_Full.zip").write_bytes(b"")

    def found(song_id):
        return [os.path.basename(p) for p in ms.find_song_folder(str(tmp_path), song_id)]

    assert found("Actions_DevilsWords") == ["Actions_DevilsWords_Full"]
    assert found("JPLantieri_Riesling") == [f"JPLantieri_Riesling_Full_{k}" for k in (1, 2, 10)]
    assert found("KCUBaroque_TelemannLaLyra") == ["KCLBaroque_TelemannLaLyra_Full"]
    assert found("Fin_Echoes") == ["Fin_Echoes"]
    assert found("JPLantieri_Chardonnay") == ["JPLantieri_Chardonnay_Full"]  # not its remixes
    assert found("Zwiepack_Air") == []


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixing_secret")
    return root, fake_data.write_fake_mixing_secret(root)


def test_fake_lists_every_raw_file_once_with_its_side():
    for song in fake_data.SONGS:
        listed = {name for _, _, names in song.stems for name in names}
        assert sorted(listed) == sorted(raw.name for raw in song.raws), song.song_id
    pairs = {"Actions_DevilsWords": "Actions - Devil's Words"}
    pairs["MR0908_AlJames"] = "Al James - Schoolboy Facination"
    for song_id, musdb_name in pairs.items():  # the merged builder's duplicates
        assert multitrack.canonical_key(song_id) == multitrack.canonical_key(musdb_name)


def test_list_tracks_matches_the_fake(fake):
    root, expected = fake
    listing = ms.list_tracks(str(root))
    tracks = {t.song_id: t for t in listing.tracks}
    skipped = {i: reason for reason, ids in listing.skipped.items() for i in ids}
    assert set(tracks) | set(skipped) == set(expected) and not set(tracks) & set(skipped)
    for song in fake_data.SONGS:
        want = expected[song.song_id]
        if "skip" in want:
            assert skipped[song.song_id] == want["skip"]
            continue
        track = tracks[song.song_id]
        assert track.source == "mixing_secret" and track.max_length_mismatch_s is None
        for side in ("drums", "drumless"):
            paths = getattr(track, side)
            assert tuple(sorted(os.path.basename(p) for p in paths)) == want[side]
            assert all(os.path.isabs(p) and os.path.isfile(p) for p in paths)
            assert not any("_STEMS" in p or "__MACOSX" in p for p in paths)
        # Every raw file of the YAML is in exactly one of drums / drumless / dropped.
        routed = [n for side in SIDES for n in want[side]]
        assert sorted(routed) == sorted({r.name for r in song.raws})
    riesling = {os.path.basename(os.path.dirname(p)) for p in tracks["JPLantieri_Riesling"].drums}
    assert riesling == {"JPLantieri_Riesling_Full_1", "JPLantieri_Riesling_Full_2"}
    assert all("Fin_Echoes_RAW" in p for p in tracks["Fin_Echoes"].drumless)


# --------------------------------------------------------------------------------- build


@pytest.fixture(scope="module")
def built(fake, tmp_path_factory):
    root, _ = fake
    builder = _build(root, tmp_path_factory.mktemp("data"))
    return builder, _records(builder)


def _raw_paths(root, song_id: str, names) -> list[str]:
    """The files named in a song's YAML, found on disk without the builder's resolver."""
    paths = []
    for name in names:
        found = [
            p
            for p in root.rglob(name)
            if p.relative_to(root).parts[0].startswith(song_id) and "_STEMS" not in str(p)
        ]
        assert len(found) == 1, (name, found)
        paths.append(str(found[0]))
    return paths


def test_clips_are_the_routed_sums_of_every_raw_file(fake, built):
    root, expected = fake
    _, by_split = built
    clips = collections.defaultdict(list)
    for records_of_split in by_split.values():
        for record in records_of_split:
            clips[record["song_id"].decode()].append(record)
    assert set(clips) == {i for i, want in expected.items() if "skip" not in want}
    scales = []
    for song_id, song_clips in clips.items():
        want = expected[song_id]
        drums = multitrack.sum_files(_raw_paths(root, song_id, want["drums"]))
        drumless = multitrack.sum_files(_raw_paths(root, song_id, want["drumless"]))
        # All referenced files but the dropped click, summed at once.
        everything = multitrack.sum_files(
            _raw_paths(root, song_id, want["drums"] + want["drumless"])
        )
        length = len(everything)
        drums, drumless = (np.pad(x, (0, length - len(x))) for x in (drums, drumless))
        # Unity sums above full scale are scaled down, both stems by one gain.
        scale = max(1.0, *(np.abs(x).max() for x in (drums, drumless, everything)))
        scales.append(scale)
        for record in song_clips:
            window = slice(int(record["start_sample"]), int(record["start_sample"]) + 2**16)
            got_drums = audio.from_pcm16(record["drums"])
            got_drumless = audio.from_pcm16(record["drumless"])
            np.testing.assert_allclose(got_drums, drums[window] / scale, atol=1.01 / 32768)
            np.testing.assert_allclose(
                got_drums + got_drumless, everything[window] / scale, atol=2.01 / 32768
            )
    assert max(scales) > 1.0  # the loud fake song exercises the scaling


def test_every_song_in_one_split_and_skips_counted(fake, built):
    _, expected = fake
    builder, by_split = built
    splits = collections.defaultdict(set)
    for split, clips in by_split.items():
        for record in clips:
            splits[record["song_id"].decode()].add(split)
    assert all(len(s) == 1 for s in splits.values())
    for song_id, (split,) in splits.items():
        assert split == records.split_of(multitrack.split_key(song_id))
    kept = [i for i, want in expected.items() if "skip" not in want]
    assert builder.info.metadata["num_tracks"] == len(kept)
    skipped = collections.defaultdict(list)
    for song_id, want in expected.items():
        if "skip" in want:
            skipped[want["skip"]].append(song_id)
    assert builder.info.metadata["skipped"] == {k: sorted(v) for k, v in skipped.items()}
    assert builder.info.metadata["skipped"]["audio not downloaded"] == ["Giselle_You"]


# ----------------------------------------------------------------------------- malformed


@pytest.fixture
def copy(fake, tmp_path):
    root, _ = fake
    shutil.copytree(root, tmp_path / "ms")
    return tmp_path / "ms"


def _fails(manual_dir, data_dir) -> str:
    with pytest.raises(multitrack.DatasetError) as info:
        _build(manual_dir, data_dir)
    assert not _finished(data_dir)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_raw_file_missing_from_a_downloaded_song_is_an_error(copy, tmp_path):
    missing = copy / "MR0908_AlJames_Full" / "07_Bass.wav"
    missing.unlink()
    track = next(t for t in ms.list_tracks(str(copy)).tracks if t.song_id == "MR0908_AlJames")
    assert str(missing) in track.drumless
    message = _fails(copy, tmp_path / "data")
    assert str(missing) in message and "missing" in message


@pytest.mark.parametrize(
    "content",
    [
        b"stems: {S01: [unclosed\n",
        b"\xff\xfe\x00binary",
        b"",
        b"stems:\n  S01:\n    instrument: drum set\n    raw:\n      X1: {filename: a.wav}\n",
    ],
)
def test_unreadable_metadata_is_a_one_line_error(copy, tmp_path, content):
    path = copy / "metadata" / "CarolDant_DoNotStand_METADATA.yaml"
    path.write_bytes(content)
    message = _fails(copy, tmp_path / "data")
    assert message.startswith(f"{path}: unreadable metadata YAML (")


def test_empty_folder_and_missing_metadata_folder_are_errors(copy, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "empty or missing folder" in _fails(tmp_path / "empty", tmp_path / "data")
    shutil.rmtree(copy / "metadata")
    assert str(copy / "metadata") in _fails(copy, tmp_path / "data")
