"""medleydb: MedleyDB v1 + v2 multitracks as paired drum / drumless clip records.

Each track folder's `<ID>_METADATA.yaml` labels every stem with an instrument; the stems are
routed by label (DATASETS §2.5, the rule MUSDB18 used for its MedleyDB songs):

- a track is kept iff some stem is labelled drum set, kick drum, snare drum, high hat or drum
  machine (`KIT_LABELS`); other tracks (no percussion, or only percussion such as orchestral
  bass drum and cymbal) are skipped and counted;
- in a kept track, every stem labelled with one of the 29 percussion labels of `DRUM_LABELS`
  goes to the drum side, every other stem to the drumless side;
- `STEM_OVERRIDES` corrects a few stems whose label hides drums (percussive `fx/processed
  sound` and `sampler` stems go to the drum side) or which carry drum bleed (left out of both).

Only `<ID>_STEMS/` and the YAML are read; `_MIX.wav` and `_RAW/` may be absent.

    python -m jdrum.build_dataset medleydb --manual_dir ~/data/medleydb --data_dir data/tfds
"""

from __future__ import annotations

import os
from typing import NamedTuple

import tensorflow_datasets as tfds
import yaml
from absl import logging

from jdrum.datasets import multitrack, records

SOURCE = "medleydb"
# Folders that hold the track folders (the medleydb package's `Audio/`, the Zenodo archives'
# `V1/` and `V2/`); without any of them the track folders lie in the root itself.
CONTAINERS = ("Audio", "V1", "V2")
METADATA_DIR = "Metadata"  # fallback home of `<ID>_METADATA.yaml` (marl/medleydb's folder)
NO_KIT = "no drum kit or drum machine"

# The stem labels routed to the drum side (DATASETS §1.5: sigsep-mus-mdbconvert's list, which
# made MUSDB18's "drums" stem): kit, kit pieces, drum machine and unpitched percussion. Pitched
# percussion (vibraphone, marimba, xylophone, glockenspiel) and whistle are not in it.
DRUM_LABELS = (
    "timpani",
    "toms",
    "snare drum",
    "kick drum",
    "bass drum",
    "bongo",
    "conga",
    "tambourine",
    "darbuka",
    "doumbek",
    "tabla",
    "auxiliary percussion",
    "drum set",
    "sleigh bells",
    "cowbell",
    "cabasa",
    "high hat",
    "gong",
    "guiro",
    "gu",
    "cymbal",
    "chimes",
    "castanet",
    "claps",
    "rattle",
    "shaker",
    "maracas",
    "snaps",
    "drum machine",
)
# A track has drums iff one of its stems carries one of these labels (DATASETS §2.5 rule 1).
KIT_LABELS = ("drum set", "kick drum", "snare drum", "high hat", "drum machine")

DRUMS, DRUMLESS, DROP = "drums", "drumless", "drop"


class Override(NamedTuple):
    """Where one stem goes instead of where its label sends it."""

    label: str  # the stem's label in metadata version 1.2; under another label: no override
    side: str  # DRUMS, or DROP (in neither stem)
    why: str


_PERCUSSIVE_FX = Override("fx/processed sound", DRUMS, "percussive fx stem")
_VIBES_BLEED = Override("vibraphone", DROP, "drum bleed (the full mix) in the vibraphone stem")
# Stems whose label hides drums or drum bleed: the manual listening review of
# crlandsc/mss-datasets (docs/medleydb_exclusions.md), as DATASETS §2.5 item 4 recommends.
STEM_OVERRIDES: dict[tuple[str, str], Override] = {
    ("AimeeNorwich_Flying", "S02"): _PERCUSSIVE_FX,
    ("AimeeNorwich_Flying", "S12"): _PERCUSSIVE_FX,
    ("DreamersOfTheGhetto_HeavyLove", "S03"): Override(
        "fx/processed sound", DRUMS, "reversed percussion"
    ),
    ("EthanHein_1930sSynthAndUprightBass", "S02"): _PERCUSSIVE_FX,
    ("Grants_PunchDrunk", "S10"): _PERCUSSIVE_FX,
    ("MatthewEntwistle_TheArch", "S08"): _PERCUSSIVE_FX,
    ("MatthewEntwistle_TheArch", "S17"): _PERCUSSIVE_FX,
    ("TablaBreakbeatScience_MoodyPlucks", "S02"): _PERCUSSIVE_FX,
    ("TablaBreakbeatScience_MoodyPlucks", "S03"): _PERCUSSIVE_FX,
    ("TablaBreakbeatScience_Scorpio", "S06"): _PERCUSSIVE_FX,
    ("Snowmine_Curfews", "S06"): Override("sampler", DRUMS, "sampled drums"),
    ("Karachacha_Volamos", "S03"): Override("vibraphone", DROP, "drum bleed in the vibraphone"),
    ("HopsNVinyl_ChickenFriedSteak", "S05"): _VIBES_BLEED,
    ("HopsNVinyl_HoneyBrown", "S01"): _VIBES_BLEED,
    ("HopsNVinyl_ReignCheck", "S05"): _VIBES_BLEED,
    ("HopsNVinyl_WidowsWalk", "S05"): _VIBES_BLEED,
}


# ------------------------------------------------------------------------------ metadata


def _invalid(path: str, reason: str) -> multitrack.DatasetError:
    return multitrack.DatasetError(f"{path}: unreadable metadata YAML ({reason})")


def _yaml_reason(error: yaml.YAMLError) -> str:
    """One line: the parser's problem and where, not its multi-line excerpt of the file."""
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())


def _is_plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and os.path.basename(name) == name


def load_metadata(path: str) -> dict:
    """Reads and checks a `<ID>_METADATA.yaml` (DATASETS §2.4).

    Only what routing needs is checked: a `stems` mapping whose entries have a plain `filename`
    and an `instrument` (a label or a list of labels); `stem_dir`, when present, a plain name.

    Raises:
      multitrack.DatasetError: one line, `<path>: unreadable metadata YAML (<reason>)`.
    """
    try:
        with open(path, encoding="utf-8") as f:
            metadata = yaml.safe_load(f)
    except yaml.YAMLError as error:
        raise _invalid(path, _yaml_reason(error)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise _invalid(path, " ".join(str(error).split())) from None
    if not isinstance(metadata, dict):
        raise _invalid(path, f"a {type(metadata).__name__}, not a mapping")
    stems = metadata.get("stems")
    if not isinstance(stems, dict):
        raise _invalid(path, "no 'stems' mapping")
    if "stem_dir" in metadata and not _is_plain_name(metadata["stem_dir"]):
        raise _invalid(path, f"stem_dir {metadata['stem_dir']!r} is not a folder name")
    for key, stem in stems.items():
        if not isinstance(stem, dict):
            raise _invalid(path, f"stem {key} is not a mapping")
        if not _is_plain_name(stem.get("filename")):
            raise _invalid(path, f"stem {key} has no valid 'filename'")
        labels = stem.get("instrument")
        labels = labels if isinstance(labels, list) else [labels]
        if not labels or not all(isinstance(label, str) and label for label in labels):
            raise _invalid(path, f"stem {key} has no valid 'instrument'")
    return metadata


def stem_labels(stem: dict) -> tuple[str, ...]:
    """The instrument label(s) of one stem entry, lower case (a string or a list in the YAML)."""
    labels = stem["instrument"]
    labels = labels if isinstance(labels, list) else [labels]
    return tuple(label.strip().lower() for label in labels)


def route_stems(song_id: str, metadata: dict) -> tuple[list[str], list[str]] | None:
    """Which stems of a track are drums and which are not (the policy in the module docstring).

    A stem with a list of labels is a drum stem if any of them is in `DRUM_LABELS`. A stem in
    `STEM_OVERRIDES` goes where the table says if its label is still the one the table was
    made for; a dropped stem is in neither list.

    Args:
      song_id: the track's ID (the key of `STEM_OVERRIDES`).
      metadata: the YAML, as `load_metadata` returns it.

    Returns:
      (drum stem keys, drumless stem keys), each sorted, or None if the track has no drum kit
      or drum machine stem (it is skipped).
    """
    stems = metadata["stems"]
    labels = {key: stem_labels(stem) for key, stem in stems.items()}
    if not any(label in KIT_LABELS for ls in labels.values() for label in ls):
        return None
    drums, drumless = [], []
    for key in sorted(stems):
        side = DRUMS if any(label in DRUM_LABELS for label in labels[key]) else DRUMLESS
        override = STEM_OVERRIDES.get((song_id, key))
        if override is not None:
            if override.label in labels[key]:
                side = override.side
            else:
                logging.warning(
                    "medleydb: %s %s is labelled %s, not %r: override (%s) not applied",
                    song_id,
                    key,
                    "/".join(labels[key]),
                    override.label,
                    override.why,
                )
        if side == DRUMS:
            drums.append(key)
        elif side == DRUMLESS:
            drumless.append(key)
    return drums, drumless


# ------------------------------------------------------------------------------- folders


def _subfolders(folder: str) -> list[str]:
    return sorted(
        name
        for name in os.listdir(folder)
        if not multitrack.is_hidden(name) and os.path.isdir(os.path.join(folder, name))
    )


def _has_container(folder: str) -> bool:
    return any(os.path.isdir(os.path.join(folder, name)) for name in CONTAINERS)


def find_root(root: str) -> str:
    """`root`, or its only sub-folder when that one holds `Audio/`, `V1/` or `V2/` (an archive
    that unpacks into one more folder, like `MedleyDB_sample/Audio/`)."""
    if not os.path.isdir(root):
        raise multitrack.DatasetError(f"{root}: no such folder (expected a MedleyDB download)")
    if _has_container(root):
        return root
    children = [name for name in _subfolders(root) if name != METADATA_DIR]
    if len(children) == 1 and _has_container(os.path.join(root, children[0])):
        return os.path.join(root, children[0])
    return root


def find_tracks(root: str) -> list[tuple[str, str]]:
    """(ID, track folder) of every track under `root`, sorted by ID.

    Track folders are the sub-folders of `root/Audio`, `root/V1` and `root/V2` when any of those
    exists, else the sub-folders of `root` itself except `Metadata/`. Dotfiles, AppleDouble
    `._*` files and `__MACOSX` are ignored; the folder name is the ID.

    Raises:
      multitrack.DatasetError: the same ID in two folders (say `V1/` and `V2/`).
    """
    root = os.path.abspath(root)
    containers = [os.path.join(root, c) for c in CONTAINERS if os.path.isdir(os.path.join(root, c))]
    found: dict[str, str] = {}
    for container in containers or [root]:
        for name in _subfolders(container):
            if not containers and name == METADATA_DIR:
                continue
            folder = os.path.join(container, name)
            if name in found:
                raise multitrack.DatasetError(f"{folder}: track {name} also in {found[name]}")
            found[name] = folder
    return sorted(found.items())


def metadata_path(root: str, song_id: str, folder: str) -> str:
    """`<folder>/<ID>_METADATA.yaml`, else `<root>/Metadata/<ID>_METADATA.yaml`.

    Raises:
      multitrack.DatasetError: neither exists (one line naming the track folder).
    """
    name = f"{song_id}_METADATA.yaml"
    for path in (os.path.join(folder, name), os.path.join(root, METADATA_DIR, name)):
        if os.path.isfile(path):
            return path
    raise multitrack.DatasetError(
        f"{folder}: no {name} in the track folder or in {os.path.join(root, METADATA_DIR)} "
        "(get it from github.com/marl/medleydb, medleydb/data/Metadata)"
    )


def list_tracks(root: str) -> multitrack.Listing:
    """Every MedleyDB track under `root` with its drum and drumless stem files.

    Tracks without a drum kit or drum machine are skipped with the reason `NO_KIT`. Stem paths
    are `<track folder>/<stem_dir>/<filename>` from the YAML; whether they exist is checked by
    `multitrack.checked_listing`, not here.

    Raises:
      multitrack.DatasetError: a track folder without metadata, or unreadable metadata.
    """
    root = find_root(os.path.abspath(root))
    listing = multitrack.Listing(tracks=[])
    for song_id, folder in find_tracks(root):
        metadata = load_metadata(metadata_path(root, song_id, folder))
        routed = route_stems(song_id, metadata)
        if routed is None:
            listing.skip(NO_KIT, song_id)
            continue
        stem_dir = os.path.join(folder, metadata.get("stem_dir") or f"{song_id}_STEMS")
        drums, drumless = (
            tuple(os.path.join(stem_dir, metadata["stems"][key]["filename"]) for key in keys)
            for keys in routed
        )
        # Stems of one track are cut from one session: more than 1 s apart is a broken copy.
        track = multitrack.Track(song_id, SOURCE, drums, drumless, max_length_mismatch_s=1.0)
        listing.tracks.append(track)
    return listing


class Builder(multitrack.MultitrackBuilder):
    """MedleyDB multitracks as drum / drumless clip pairs, routed by stem label."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": records.RAW_BYTES_NOTE,
    }
    BUILDER_CONFIGS = multitrack.default_configs()
    HOMEPAGE = "https://medleydb.weebly.com"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request MedleyDB v1 and v2 on Zenodo (records 1649325 and 1715175) and unpack them; pass
    the folder holding Audio/<ID>/ (or V1/<ID>/ and V2/<ID>/, or the <ID>/ folders themselves)
    as --manual_dir. Each track needs <ID>_STEMS/ and <ID>_METADATA.yaml, in its folder or in
    <manual_dir>/Metadata/ (copy github.com/marl/medleydb medleydb/data/Metadata).
    """

    def list_tracks(self, root: str) -> multitrack.Listing:
        return list_tracks(root)
