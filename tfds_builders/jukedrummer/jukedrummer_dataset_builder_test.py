"""jukedrummer: the fake datasets merged, duplicates removed once, splits by recording; config
`plus` with Slakh2100 and MoisesDB."""

import collections

import numpy as np
import pytest

from jdrum import audio
from jdrum.datasets import multitrack, records
from tfds_builders import testing
from tfds_builders.jukedrummer import jukedrummer_dataset_builder as jukedrummer
from tfds_builders.medleydb import fake_data as fake_medleydb
from tfds_builders.mixing_secret import fake_data as fake_mixing_secret
from tfds_builders.moisesdb import fake_data as fake_moisesdb
from tfds_builders.musdb18 import fake_data as fake_musdb18
from tfds_builders.slakh2100 import fake_data as fake_slakh

CLIP = testing.SMALL_CLIP
# The fakes share three songs with MUSDB18: one exact-key MedleyDB pair, one exact-key and one
# alias-table MixingSecret pair (DATASETS §4.5, §4.6).
PAIRS = {
    "A Classic Education - NightOwl": "AClassicEducation_NightOwl",
    "Actions - Devil's Words": "Actions_DevilsWords",
    "Al James - Schoolboy Facination": "MR0908_AlJames",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("jukedrummer")
    fake_musdb18.write_fake_musdb18(root / "musdb18", "hq")
    fake_medleydb.write_fake_medleydb(root / "medleydb")
    fake_mixing_secret.write_fake_mixing_secret(root / "mixing_secret")
    # Only config plus reads these; the default config must ignore them.
    fake_slakh.write_fake_slakh(root / "slakh2100")
    fake_moisesdb.write_fake_moisesdb(root / "moisesdb")
    return root


@pytest.mark.parametrize("prefer_musdb", [False, True])
def test_duplicates_are_removed_once_and_share_a_split(root, prefer_musdb):
    listing = jukedrummer.usable_tracks(str(root), prefer_musdb, CLIP.clip_length)
    ids = collections.Counter(t.song_id for t in listing.tracks)
    assert max(ids.values()) == 1
    keys = collections.Counter(t.key for t in listing.tracks)
    assert max(keys.values()) == 1  # no recording twice
    removed = [i for reason, v in listing.skipped.items() if reason.startswith("dup") for i in v]
    if prefer_musdb:
        assert sorted(removed) == sorted(PAIRS.values())
        assert set(PAIRS) <= set(ids)
    else:
        assert sorted(removed) == sorted(PAIRS)
        assert set(PAIRS.values()) <= set(ids)
    for musdb_name, other_id in PAIRS.items():
        assert multitrack.canonical_key(musdb_name) == multitrack.canonical_key(other_id)
        survivor = next(t for t in listing.tracks if t.song_id in (musdb_name, other_id))
        twin = multitrack.Track(musdb_name, "musdb18", (), ())
        assert survivor.split == twin.split  # whichever copy is kept, the split is the same
    # The union splits every recording by the hash: MUSDB18's official folders do not leak in.
    for track in listing.tracks:
        assert track.assigned_split is None
        assert track.split == records.split_of(multitrack.split_key(track.song_id))
    musdb_test = set(fake_musdb18.SONGS["test"]) & set(ids)
    assert musdb_test and any(t.split != "test" for t in listing.tracks if t.song_id in musdb_test)
    sources = {t.source for t in listing.tracks}
    assert sources == {"musdb18", "medleydb", "mixing_secret"}
    # Each dataset's own skips are reported under its name.
    assert any(reason.startswith("medleydb: ") for reason in listing.skipped)
    assert any(reason.startswith("mixing_secret: ") for reason in listing.skipped)


def test_build_merges_the_datasets(root, tmp_path):
    builder = testing.build(
        jukedrummer.Builder, root, tmp_path, config_class=jukedrummer.JukedrummerConfig
    )
    assert builder.info.metadata["duplicates_removed"] == len(PAIRS)
    usable = jukedrummer.usable_tracks(str(root), clip_length=CLIP.clip_length)
    tracks = {t.song_id: t for t in usable.tracks}
    splits_of_song = collections.defaultdict(set)
    for split, source in builder.as_data_source().items():
        for i in range(len(source)):
            record = source[i]
            song_id = record["song_id"].decode()
            splits_of_song[song_id].add(split)
            track = tracks[song_id]
            assert record["source"].decode() == track.source
            assert split == records.split_of(multitrack.split_key(song_id))  # not MUSDB's folders
    assert set(splits_of_song) == set(tracks)  # every usable recording has clips
    assert all(len(s) == 1 for s in splits_of_song.values())
    # drums + drumless is the sum of all the song's routed files (one song per dataset).
    for source_name in ("musdb18", "medleydb", "mixing_secret"):
        song = next(t for t in tracks.values() if t.source == source_name)
        split = next(iter(splits_of_song[song.song_id]))
        data = builder.as_data_source()[split]
        record = next(
            data[i] for i in range(len(data)) if data[i]["song_id"].decode() == song.song_id
        )
        everything = multitrack.sum_files(song.drums + song.drumless)
        peak = max(
            np.abs(x).max()
            for x in (
                multitrack.sum_files(song.drums),
                multitrack.sum_files(song.drumless),
                everything,
            )
        )
        start = int(record["start_sample"])
        mix = audio.from_pcm16(record["drums"]) + audio.from_pcm16(record["drumless"])
        np.testing.assert_allclose(
            mix, everything[start : start + 2**16] / max(peak, 1.0), atol=2 / 32768
        )


ALL_SOURCES = tuple(jukedrummer.SOURCES)


def test_plus_adds_slakh_and_moisesdb_and_removes_the_same_duplicates(root):
    default = jukedrummer.usable_tracks(str(root), clip_length=CLIP.clip_length)
    plus = jukedrummer.usable_tracks(str(root), False, CLIP.clip_length, ALL_SOURCES)
    assert {t.source for t in plus.tracks} == set(ALL_SOURCES)
    extra = [t for t in plus.tracks if t.source in ("slakh2100", "moisesdb")]
    assert sorted(t.song_id for t in extra) == sorted(fake_slakh.KEPT + fake_moisesdb.KEPT)
    assert [t for t in plus.tracks if t.source not in ("slakh2100", "moisesdb")] == default.tracks
    duplicates = {k: v for k, v in plus.skipped.items() if k.startswith("duplicate")}
    assert duplicates == {k: v for k, v in default.skipped.items() if k.startswith("duplicate")}
    assert max(collections.Counter(t.key for t in plus.tracks).values()) == 1
    # Slakh's split folders do not leak in: every recording is hash-split.
    for track in plus.tracks:
        assert track.assigned_split is None
        assert track.split == records.split_of(multitrack.split_key(track.song_id))
    assert plus.skipped["slakh2100: " + fake_slakh.OMITTED] == ["Track00049"]
    assert "moisesdb: " + fake_moisesdb.NO_DRUMS in plus.skipped
    with pytest.raises(ValueError, match="unknown datasets"):
        jukedrummer.usable_tracks(str(root), sources=("slakh",))


def test_plus_config_declares_drum_notes(tmp_path):
    configs = {c.name: c for c in jukedrummer.Builder.BUILDER_CONFIGS}
    assert configs["plus"].sources == ALL_SOURCES and configs["plus"].drum_notes
    assert not configs["default"].drum_notes
    assert configs["default"].sources == jukedrummer.PAPER_SOURCES
    features = jukedrummer.Builder(config="plus", data_dir=str(tmp_path)).info.features
    assert "drum_notes" in features.keys()


def test_build_plus_gives_every_record_drum_notes(root, tmp_path):
    builder = testing.build(
        jukedrummer.Builder,
        root,
        tmp_path,
        config_class=jukedrummer.JukedrummerConfig,
        sources=ALL_SOURCES,
        drum_notes=True,
    )
    assert builder.info.metadata["duplicates_removed"] == len(PAIRS)
    usable = jukedrummer.usable_tracks(str(root), False, CLIP.clip_length, ALL_SOURCES)
    tracks = {t.song_id: t for t in usable.tracks}
    splits_of_song = collections.defaultdict(set)
    for split, source in builder.as_data_source().items():
        for i in range(len(source)):
            record = source[i]
            song = record["song_id"].decode()
            splits_of_song[song].add(split)
            notes = record["drum_notes"]
            assert notes.dtype == np.float32 and notes.shape[1:] == (3,)
            if tracks[song].source == "slakh2100":
                start = int(record["start_sample"])
                want = tracks[song].drum_notes
                samples = np.round(want[:, 0].astype(np.float64) * audio.SAMPLE_RATE)
                want = want[(samples >= start) & (samples < start + CLIP.clip_length)]
                np.testing.assert_allclose(
                    notes, want - [start / audio.SAMPLE_RATE, 0, 0], atol=1e-3
                )
                assert len(notes) and len(record["true_beats"])
            else:
                assert notes.shape == (0, 3)
    assert set(splits_of_song) == set(tracks)
    assert all(len(s) == 1 for s in splits_of_song.values())
