"""mixing_secret: the MixingSecret multitracks (Gururani & Lerch 2017) as drum / drumless clips.

MixingSecret is 258 raw multitracks of the Cambridge-MT "Mixing Secrets" library with
MedleyDB-style labels: `metadata/<ID>_METADATA.yaml` (GitHub SiddGururani/mixing_secrets) names
each song's stems, and each stem the raw files (`NN_Name.wav`) it was made from. The archives hold
only the raw files, so both stems are sums of raw files: every raw file referenced by the YAML
goes to exactly one side (or, for a metronome click, to neither) by the labels of the stems that
reference it (`route_raw_files`, DATASETS §3.5):

  1. collect, per raw file, the labels of every stem that lists it (a label list counts as all
     of its labels);
  2. a song has drums iff a stem is `drum set`, or a `drum machine` file passes rule 3b;
     other songs are skipped and counted;
  3. a file is on the drum side if (a) a `drum set` stem lists it, (b) a `drum machine` stem lists
     it and its name names no pitched part (Synth, Gtr/Guitar, SFX, Bass, Pad, Vox, Key),
     (c) a label is unpitched percussion (`PERCUSSION_LABELS`), or (d) the song has a `drum set`
     and a label is a room / ambience microphone (`ROOM_MICS_TO_DRUMS`, on);
     `click` files are dropped; everything else is drumless.

Raw files of one song differ in length; they start together and are zero-padded to the longest.

    python -m jdrum.build_dataset mixing_secret --manual_dir ~/data/mixing_secret \
        --data_dir data/tfds
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Mapping

import tensorflow_datasets as tfds
import yaml
from absl import logging

from jdrum.datasets import multitrack, records

SOURCE = "mixing_secret"
METADATA_DIR = "metadata"
METADATA_SUFFIX = "_METADATA.yaml"

DRUM_KIT = "drum set"
DRUM_MACHINE = "drum machine"
# Rule 3c: unpitched percussion, as in the MUSDB / MedleyDB policy (timpani, gong and chimes
# included): every such stem label of MixingSecret (DATASETS §3.5, typos and all), the drum breaks
# and fills, and MedleyDB's percussion labels, which the cleaned vocabulary reuses.
PERCUSSION_LABELS = frozenset(
    {
        # MixingSecret stem labels.
        "anvil",
        "bombo",
        "bongo",
        "bongos",
        "break",
        "brushes",
        "brushkit",
        "chimes",
        "clap",
        "claps",
        "clave",
        "conga",
        "congas",
        "cunono",
        "daiko",
        "djembe",
        "djembefx",
        "electropercussion",
        "fill",
        "fingerclicks",
        "gong",
        "gongroll",
        "guasa",
        "hand claps",
        "handbells",
        "handclap",
        "malaysiandjembe",
        "maracas",
        "metalhit",
        "paliteo",
        "percchoir micpair",
        "percsolo_closemic",
        "percsolo_farmicpair",
        "percussion",
        "rainstick",
        "rim",
        "rimshot",
        "roman wardrum",
        "shaker",
        "shakers",
        "sidestick",
        "sleighbells",
        "taiko",
        "tamb",
        "tambo",
        "tambourine",
        "tambourineamb",
        "timbale",
        "timp",
        "timpani",
        "triangle",
        "tubularbells",
        "woodblock",
        # MedleyDB taxonomy labels of the MUSDB conversion (DATASETS §1.5).
        "auxiliary percussion",
        "bass drum",
        "cabasa",
        "castanet",
        "cowbell",
        "cymbal",
        "darbuka",
        "doumbek",
        "gu",
        "guiro",
        "high hat",
        "kick drum",
        "rattle",
        "sleigh bells",
        "snaps",
        "snare drum",
        "tabla",
        "toms",
    }
)
# Rule 3d: room / ambience microphones (`room*` and `amb*` included by prefix).
ROOM_LABELS = frozenset({"main system", "mainpair", "amomono", "ambience"})
ROOM_PREFIXES = ("room", "amb")
# Rule 3d switch: in a song with a drum kit the band's room microphones are dominated by the
# drums (and the dataset's own script meant to add them to the drum stem), so they go with the
# drums. Changing it changes the data: bump the builder's VERSION.
ROOM_MICS_TO_DRUMS = True
# Labels that look percussive but are pitched instruments or effects (`tub` is a tuba); listed
# for documentation and tests: being outside PERCUSSION_LABELS is what sends them to drumless.
NOT_DRUM_LABELS = frozenset(
    {
        "bell",
        "bell sample",
        "bells",
        "boom",
        "electrohit",
        "glockenspiel",
        "hit",
        "marimba",
        "noise",
        "sample",
        "schoolbell",
        "subboom",
        "subdrop",
        "transition",
        "tub",
        "vibraphone",
        "vibrophone",
        "whistle",
    }
)
# Files in neither stem: `click` is a metronome track.
DROPPED_LABELS = frozenset({"click"})
# Rule 3b: a drum machine file whose name contains one of these (any case) is not drums.
NON_DRUM_LOOP_WORDS = ("synth", "gtr", "guitar", "sfx", "bass", "pad", "vox", "key")
# Archives named differently from their ID (DATASETS §3.1).
ARCHIVE_ALIASES = {"KCUBaroque_TelemannLaLyra": "KCLBaroque_TelemannLaLyra"}
# Generated stems of the authors' MedleyDB-style layout: averages, never raw files.
_STEMS_FOLDER_SUFFIX = "_STEMS"
_RAW_KEY = re.compile(r"^R(\d+)$")


# ------------------------------------------------------------------------------- metadata


def _labels(instrument) -> tuple[str, ...]:
    """A stem's `instrument` (one label or a list of them), lower-cased."""
    values = instrument if isinstance(instrument, list) else [instrument]
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise ValueError(f"instrument {instrument!r} is not a label or a list of labels")
    return tuple(v.strip().lower() for v in values)


def _raw_index(key) -> int:
    """`R010` -> 10: the generator wrote R01..R09, R010, R11 (no fixed width)."""
    match = _RAW_KEY.match(str(key))
    if match is None:
        raise ValueError(f"raw key {key!r} is not R<number>")
    return int(match.group(1))


def stem_files(metadata: Mapping) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """The stems of a MixingSecret YAML: (stem key, its labels, its raw file names).

    Raw files are ordered by their key's number. Raises ValueError naming what is malformed.
    """
    if not isinstance(metadata, Mapping):
        raise ValueError("not a mapping")
    stems = metadata.get("stems")
    if not isinstance(stems, Mapping) or not stems:
        raise ValueError("no 'stems' mapping")
    out = []
    for stem_key, stem in stems.items():
        if not isinstance(stem, Mapping):
            raise ValueError(f"stem {stem_key} is not a mapping")
        try:
            labels = _labels(stem.get("instrument"))
        except ValueError as error:
            raise ValueError(f"stem {stem_key}: {error}") from None
        raw = stem.get("raw") or {}
        if not isinstance(raw, Mapping):
            raise ValueError(f"stem {stem_key}: 'raw' is not a mapping")
        entries = []
        for raw_key, entry in raw.items():
            index = _raw_index(raw_key)
            name = entry.get("filename") if isinstance(entry, Mapping) else None
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"stem {stem_key} {raw_key}: no filename")
            if os.path.basename(name) != name or name in (".", ".."):
                raise ValueError(f"stem {stem_key} {raw_key}: {name!r} is not a file name")
            entries.append((index, name))
        out.append((str(stem_key), labels, tuple(name for _, name in sorted(entries))))
    return out


def read_metadata(path: str) -> dict:
    """Loads and checks one `<ID>_METADATA.yaml`.

    Raises:
      multitrack.DatasetError: one line naming the file, when it cannot be read or parsed or
        lacks the stem / raw structure.
    """
    try:
        with open(path, encoding="utf-8") as f:
            metadata = yaml.safe_load(f)
        stem_files(metadata)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError) as error:
        raise multitrack.DatasetError(
            f"{path}: unreadable metadata YAML ({_reason(error)})"
        ) from None
    return metadata


def _reason(error: Exception) -> str:
    """A one-line description of a YAML / OS / structure error."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{error.problem}{where}"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# -------------------------------------------------------------------------------- routing


def is_room_label(label: str) -> bool:
    """A room / ambience microphone label (`main system`, `room*`, `amb*`, ...)."""
    return label in ROOM_LABELS or label.startswith(ROOM_PREFIXES)


def is_drum_loop_name(filename: str) -> bool:
    """Rule 3b: a drum machine file is drums unless its name names a pitched part.

    `Loop1.wav`, `DrumLoop 2.wav`, `ShakerLoop.wav`, `Loop2Percussion.wav` are drums;
    `SynthLoop1.wav`, `ElecGtrLoop.wav`, `SFXLoop2.wav` are not.
    """
    name = filename.lower()
    return not any(word in name for word in NON_DRUM_LOOP_WORDS)


def route_raw_files(
    metadata: Mapping, room_mics_to_drums: bool = ROOM_MICS_TO_DRUMS
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None:
    """Sends every raw file of a song to the drum side, the drumless side or neither.

    Args:
      metadata: a parsed MixingSecret YAML (`stems` -> `instrument`, `raw` -> `filename`).
      room_mics_to_drums: rule 3d (room / ambience microphones of a drum kit song are drums).

    Returns:
      (drum files, drumless files, dropped files), file names sorted, each referenced file in
      exactly one of them; None if the song has no drum kit and no drum loop (rule 2).

    Raises:
      ValueError: the metadata lacks the stem / raw structure.
    """
    stems = stem_files(metadata)
    labels_of = collections.defaultdict(set)  # rule 1: file name -> labels of its stems
    for _, labels, files in stems:
        for name in files:
            labels_of[name].update(labels)
    has_kit = any(DRUM_KIT in labels for _, labels, _ in stems)

    def is_drums(name: str, labels: set[str]) -> bool:
        return (
            DRUM_KIT in labels  # 3a
            or (DRUM_MACHINE in labels and is_drum_loop_name(name))  # 3b
            or bool(labels & PERCUSSION_LABELS)  # 3c
            or (room_mics_to_drums and has_kit and any(map(is_room_label, labels)))  # 3d
        )

    drums, drumless, dropped = [], [], []
    for name, labels in sorted(labels_of.items()):
        if is_drums(name, labels):
            drums.append(name)
        elif labels & DROPPED_LABELS:
            dropped.append(name)
        else:
            drumless.append(name)
    has_loops = any(DRUM_MACHINE in labels_of[n] and is_drum_loop_name(n) for n in drums)
    if not (has_kit or has_loops):  # rule 2
        return None
    return tuple(drums), tuple(drumless), tuple(dropped)


# --------------------------------------------------------------------------------- layout


def _folder_pattern(song_id: str) -> re.Pattern:
    """`<ID>`, `<ID>_Full` and the parts `<ID>_Full_1`, ... of an ID or its archive alias."""
    names = "|".join(re.escape(n) for n in (song_id, ARCHIVE_ALIASES.get(song_id, song_id)))
    return re.compile(rf"^(?:{names})(?:_Full(?:_\d+)?)?$", re.IGNORECASE)


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


def find_song_folder(root: str, song_id: str) -> tuple[str, ...]:
    """The folders of `root` holding a song's raw files; empty if it is not downloaded.

    Accepts `<ID>_Full/` (one archive unzipped), `<ID>_Full_1/`, `<ID>_Full_2/`, ... (a
    multi-part archive, merged), the archive alias `KCLBaroque_TelemannLaLyra_Full/`, and `<ID>/`
    (renamed, or the MedleyDB-style `<ID>/<ID>_RAW/` layout). Dotfiles and `__MACOSX` are skipped.
    """
    pattern = _folder_pattern(song_id)
    names = [
        name
        for name in os.listdir(root)
        if not multitrack.is_hidden(name)
        and pattern.match(name)
        and os.path.isdir(os.path.join(root, name))
    ]
    return tuple(os.path.join(root, name) for name in sorted(names, key=_natural))


def _audio_files(folders: tuple[str, ...]) -> dict[str, str]:
    """file name -> path in the song's folders or one level below (not in generated `_STEMS`).

    A name found twice resolves to the shallower copy, then the first folder.
    """
    found = {}
    for depth in (0, 1):
        for folder in folders:
            parents = [folder]
            if depth == 1:
                parents = [
                    os.path.join(folder, name)
                    for name in sorted(os.listdir(folder), key=_natural)
                    if not multitrack.is_hidden(name)
                    and not name.endswith(_STEMS_FOLDER_SUFFIX)
                    and os.path.isdir(os.path.join(folder, name))
                ]
            for parent in parents:
                for name in sorted(os.listdir(parent)):
                    path = os.path.join(parent, name)
                    if not multitrack.is_hidden(name) and os.path.isfile(path):
                        found.setdefault(name, path)
    return found


def list_tracks(root: str) -> multitrack.Listing:
    """Every song of `<root>/metadata/` with its routed raw files.

    Songs without drums and songs whose audio is not in `root` are skipped and counted. A raw
    file missing from a song's folder is listed under its expected path, so that the build stops
    on it with a one-line error.

    Raises:
      multitrack.DatasetError: no metadata folder, or an unreadable YAML (one line, its path).
    """
    root = os.path.abspath(root)
    metadata_dir = os.path.join(root, METADATA_DIR)
    if not os.path.isdir(metadata_dir):
        raise multitrack.DatasetError(
            f"{metadata_dir}: missing; copy the metadata/ folder of "
            "github.com/SiddGururani/mixing_secrets there"
        )
    files = sorted(
        name
        for name in os.listdir(metadata_dir)
        if name.endswith(METADATA_SUFFIX) and not multitrack.is_hidden(name)
    )
    if not files:
        raise multitrack.DatasetError(f"{metadata_dir}: no <ID>{METADATA_SUFFIX} file")
    listing = multitrack.Listing(tracks=[])
    for name in files:
        song_id = name[: -len(METADATA_SUFFIX)]
        routed = route_raw_files(read_metadata(os.path.join(metadata_dir, name)))
        if routed is None:
            listing.skip("no drum kit or drum loops", song_id)
            continue
        folders = find_song_folder(root, song_id)
        if not folders:
            listing.skip("audio not downloaded", song_id)
            continue
        found = _audio_files(folders)
        drums, drumless, _ = (
            tuple(found.get(f, os.path.join(folders[0], f)) for f in side) for side in routed
        )
        listing.tracks.append(
            multitrack.Track(song_id, SOURCE, drums, drumless, max_length_mismatch_s=None)
        )
    _warn_unknown_folders(root, [n[: -len(METADATA_SUFFIX)] for n in files])
    return listing


def _warn_unknown_folders(root: str, song_ids: list[str]) -> None:
    patterns = [_folder_pattern(song_id) for song_id in song_ids]
    unknown = [
        name
        for name in sorted(os.listdir(root))
        if name != METADATA_DIR
        and not multitrack.is_hidden(name)
        and os.path.isdir(os.path.join(root, name))
        and not any(p.match(name) for p in patterns)
    ]
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        logging.warning("%s: %d folder(s) without metadata, ignored: %s", root, len(unknown), shown)


# -------------------------------------------------------------------------------- builder


class Builder(multitrack.MultitrackBuilder):
    """MixingSecret songs with a drum kit or drum loops as drum / drumless clip pairs."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: raw files routed by stem labels (DATASETS §3.5), room "
        "microphones of drum kit songs with the drums (ROOM_MICS_TO_DRUMS).",
        "1.1.0": records.RAW_BYTES_NOTE,
    }
    # Every track carries max_length_mismatch_s=None: raw files are zero-padded to the longest.
    BUILDER_CONFIGS = multitrack.default_configs()
    HOMEPAGE = "https://github.com/SiddGururani/mixing_secrets"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Copy the metadata/ folder of github.com/SiddGururani/mixing_secrets into one folder, then
    download each song's full multitrack, <ID>_Full.zip, from the Cambridge-MT "Mixing Secrets"
    Free Multitrack Download Library (cambridge-mt.com/ms/mtk/) and unzip it there, giving
    <ID>_Full/NN_Name.wav. Songs not downloaded are skipped and counted. Pass that folder as
    --manual_dir.
    """

    def list_tracks(self, root: str) -> multitrack.Listing:
        return list_tracks(root)
