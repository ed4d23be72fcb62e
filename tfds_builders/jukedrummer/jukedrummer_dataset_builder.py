"""jukedrummer: MUSDB18 + MedleyDB + MixingSecret merged, cross-dataset duplicates removed.

The paper trains on the union of the three corpora (457 recordings). MUSDB18 reuses 46
MedleyDB songs and 93 MixingSecret songs; a song present twice is kept once (by default the
MedleyDB / MixingSecret copy, whose per-instrument labels follow one drum policy; config
`prefer_musdb` keeps the MUSDB18 copy instead) and the removals are counted. Every recording
is split 80/10/10 by a stable hash of its canonical key, which both copies of a song share,
so no recording can be in two splits however the datasets were built. A dataset's own split
(MUSDB18's train/ and test/ folders, Slakh2100's split folders) is not used here.

Config `plus` adds Slakh2100(-redux) and MoisesDB when their folders are there. MoisesDB shares
no song with the others and Slakh2100 is synthesised from MIDI (no recording in common either),
so the duplicate removal is unchanged; every `plus` record has a `drum_notes` field (Slakh's MIDI
notes, empty (0, 3) for the recorded songs).

    python -m jdrum.build_dataset jukedrummer --manual_dir ~/data/jukedrummer --data_dir data/tfds

with `--manual_dir` holding any of `musdb18/`, `medleydb/`, `mixing_secret/` (and, for `plus`,
`slakh2100/`, `moisesdb/`), each laid out as that builder's README says; symbolic links are fine.
"""

from __future__ import annotations

import collections
import dataclasses
import os

import tensorflow_datasets as tfds

from jdrum.datasets import multitrack, records
from tfds_builders.medleydb import medleydb_dataset_builder as medleydb
from tfds_builders.mixing_secret import mixing_secret_dataset_builder as mixing_secret
from tfds_builders.moisesdb import moisesdb_dataset_builder as moisesdb
from tfds_builders.musdb18 import musdb18_dataset_builder as musdb18
from tfds_builders.slakh2100 import slakh2100_dataset_builder as slakh2100

# Sub-folder of --manual_dir -> the builder module that lists its tracks.
SOURCES = {
    "musdb18": musdb18,
    "medleydb": medleydb,
    "mixing_secret": mixing_secret,
    "slakh2100": slakh2100,
    "moisesdb": moisesdb,
}
PAPER_SOURCES = ("musdb18", "medleydb", "mixing_secret")  # the paper's corpora


def remove_duplicates(
    tracks: list[multitrack.Track], prefer_musdb: bool = False
) -> tuple[list[multitrack.Track], dict[str, list[str]]]:
    """Keeps one copy of each recording present in MUSDB18 and in another dataset.

    Returns:
      The kept tracks (in their input order) and {reason: [removed song ids]}.
    """
    by_key = collections.defaultdict(list)
    for track in tracks:
        by_key[track.key].append(track)
    removed = set()
    skipped = collections.defaultdict(list)
    for copies in by_key.values():
        musdb_copies = [t for t in copies if t.source == "musdb18"]
        others = [t for t in copies if t.source != "musdb18"]
        if not musdb_copies or not others:
            continue
        drop, keep = (others, musdb_copies) if prefer_musdb else (musdb_copies, others)
        for track in drop:
            removed.add(id(track))
            skipped[f"duplicate of a {keep[0].source} recording"].append(track.song_id)
    return [t for t in tracks if id(t) not in removed], dict(skipped)


def usable_tracks(
    root: str,
    prefer_musdb: bool = False,
    clip_length: int = 0,
    sources: tuple[str, ...] = PAPER_SOURCES,
) -> multitrack.Listing:
    """Tracks of every dataset of `sources` found under `root`, checked, then deduplicated (a
    song whose other copy is unusable keeps the copy that works); every track is split by the
    recording hash, whatever split its own dataset's listing gave it."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown datasets {unknown}; known: {', '.join(SOURCES)}")
    present = [name for name in sources if os.path.isdir(os.path.join(root, name))]
    if not present:
        raise multitrack.DatasetError(
            f"{root}: none of the sub-folders {', '.join(sources)} (the jukedrummer layout)"
        )
    listing = multitrack.Listing(tracks=[])
    for name in present:
        module = SOURCES[name]
        tracks = module.list_tracks(os.path.join(root, name))
        checked = multitrack.checked_listing(tracks, clip_length)
        listing.tracks.extend(dataclasses.replace(t, assigned_split=None) for t in checked.tracks)
        for reason, ids in checked.skipped.items():
            listing.skipped.setdefault(f"{name}: {reason}", []).extend(ids)
    listing.tracks, duplicates = remove_duplicates(listing.tracks, prefer_musdb)
    listing.skipped.update(duplicates)
    return listing


@dataclasses.dataclass(eq=False)
class JukedrummerConfig(multitrack.MultitrackConfig):
    """Adds which datasets are merged and which copy of a duplicated song is kept."""

    prefer_musdb: bool = False  # keep MUSDB18's engineer-mixed stems instead of the originals
    sources: tuple[str, ...] = PAPER_SOURCES  # sub-folders of --manual_dir (keys of SOURCES)


class Builder(multitrack.MultitrackBuilder):
    """The merged JukeDrummer training corpus."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": records.RAW_BYTES_NOTE,
    }
    BUILDER_CONFIGS = multitrack.default_configs(JukedrummerConfig) + [
        JukedrummerConfig(
            name="prefer_musdb",
            description="As default, but a duplicated song keeps its MUSDB18 copy.",
            prefer_musdb=True,
        ),
        JukedrummerConfig(
            name="plus",
            description="As default, plus Slakh2100 and MoisesDB where present; every record "
            "has drum_notes (Slakh's MIDI notes, else empty).",
            clip=records.ClipConfig(tracker="madmom"),
            sources=tuple(SOURCES),
            drum_notes=True,
        ),
    ]
    HOMEPAGE = "https://arxiv.org/abs/2210.06007"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put (or link) the downloaded datasets into one folder as musdb18/, medleydb/ and
    mixing_secret/ (config plus: also slakh2100/ and moisesdb/), each laid out as that
    builder's README says; any subset works. Pass that folder as --manual_dir.
    """

    def usable_tracks(self, root: str) -> multitrack.Listing:
        config = self.builder_config
        listing = usable_tracks(root, config.prefer_musdb, config.clip.clip_length, config.sources)
        self.info.metadata["duplicates_removed"] = sum(
            len(ids) for reason, ids in listing.skipped.items() if reason.startswith("duplicate")
        )
        return listing
