"""jukedrummer: the three fake datasets merged, duplicates removed once, splits by recording."""

import collections

import numpy as np
import pytest

from jdrum import audio
from jdrum.datasets import multitrack, records
from tfds_builders import testing
from tfds_builders.jukedrummer import jukedrummer_dataset_builder as jukedrummer
from tfds_builders.medleydb import fake_data as fake_medleydb
from tfds_builders.mixing_secret import fake_data as fake_mixing_secret
from tfds_builders.musdb18 import fake_data as fake_musdb18

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
