"""moisesdb: MoisesDB (240 songs of 45 artists) as paired drum / drumless clip records.

Each song of the release is a folder named by its UUID, `<provider>/<uuid>/` (the provider is
`moisesdb_v0.1`), holding `data.json` and one folder per stem: `data.json`'s `stems` list gives
each stem's `stemName` (its folder: `vocals`, `bass`, `drums`, `other`, `guitar`,
`other_plucked`, `percussion`, `piano`, `other_keys`, `bowed_strings`, `wind`) and `tracks`, its
sources: `<uuid>/<stemName>/<id>.<extension>`, each with a `trackType` label of the taxonomy
(`kick drum`, `overheads`, `drum machine`, `a-tonal percussion (claps, shakers, congas, cowbell
etc)`, ...) and a `has_bleed` flag. Only these fields are read (those the authors' `moisesdb`
package reads). Sources are stereo 44.1 kHz wav; they are averaged to mono, resampled if need
be, and summed at unity gain (as the package mixes), zero-padded to the longest.

Routing (`route_sources`, in line with the MedleyDB policy of DATASETS §2.5):

- a song has drums iff its `drums` stem has a source (kit pieces, overheads, full kit or drum
  machine); other songs, percussion-only ones included, are skipped and counted;
- drums = every source of the `drums` stem, plus the unpitched sources of `percussion` (every
  `trackType` but `pitched percussion (mallets, glockenspiel, ...)`), as MUSDB18's drum stem
  holds MedleyDB's auxiliary percussion;
- dropped (neither side) = `click track` sources of `other` (a metronome);
- drumless = every other source: the stems vocals (beatboxing included), bass, guitar,
  other_plucked, piano, other_keys, bowed_strings, wind, other, and pitched percussion.

Sources with `has_bleed: true` are kept where their label sends them.

    python -m jdrum.build_dataset moisesdb --manual_dir ~/data/moisesdb --data_dir data/tfds
"""

from __future__ import annotations

import json
import os

import tensorflow_datasets as tfds
from absl import logging

from jdrum.datasets import multitrack

SOURCE = "moisesdb"
DATA_JSON = "data.json"
DRUM_STEM = "drums"
PERCUSSION_STEM = "percussion"
PITCHED_PERCUSSION = "pitched percussion"  # trackType prefix of the pitched percussion sources
CLICK_TRACK = "click track"
NO_DRUMS = "no drums stem"
DRUMS, DRUMLESS, DROP = "drums", "drumless", "drop"


# ------------------------------------------------------------------------------ metadata


def _invalid(path: str, reason: str) -> multitrack.DatasetError:
    return multitrack.DatasetError(f"{path}: unreadable {DATA_JSON} ({reason})")


def _is_plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and os.path.basename(name) == name


def read_data_json(path: str) -> dict:
    """Reads and checks a song's `data.json`: a `stems` list of mappings with a `stemName`
    (a folder name) and a `tracks` list of mappings with an `id` and an `extension` (which
    make a file name) and, when present, a string `trackType` and a boolean `has_bleed`.

    Raises:
      multitrack.DatasetError: one line, `<path>: unreadable data.json (<reason>)`.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as error:
        raise _invalid(path, f"{error.msg} at line {error.lineno}, column {error.colno}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise _invalid(path, " ".join(str(error).split())) from None
    if not isinstance(data, dict):
        raise _invalid(path, f"a {type(data).__name__}, not an object")
    stems = data.get("stems")
    if not isinstance(stems, list):
        raise _invalid(path, "no 'stems' list")
    for k, stem in enumerate(stems):
        if not isinstance(stem, dict) or not _is_plain_name(stem.get("stemName")):
            raise _invalid(path, f"stem {k} has no valid 'stemName'")
        name = stem["stemName"]
        if not isinstance(stem.get("tracks"), list):
            raise _invalid(path, f"stem {name} has no 'tracks' list")
        for j, source in enumerate(stem["tracks"]):
            if not isinstance(source, dict):
                raise _invalid(path, f"stem {name} track {j} is not an object")
            file_name = f"{source.get('id')}.{source.get('extension')}"
            if not all(isinstance(source.get(f), str) for f in ("id", "extension")) or not (
                _is_plain_name(file_name)
            ):
                raise _invalid(path, f"stem {name} track {j} has no valid 'id' and 'extension'")
            if not isinstance(source.get("trackType", ""), str):
                raise _invalid(path, f"stem {name} track {j}: 'trackType' is not a string")
            if not isinstance(source.get("has_bleed", False), bool):
                raise _invalid(path, f"stem {name} track {j}: 'has_bleed' is not true/false")
    return data


def source_side(stem_name: str, track_type: str) -> str:
    """Where one source goes: DRUMS, DRUMLESS or DROP (the policy of the module docstring)."""
    label = track_type.strip().lower()
    if stem_name == DRUM_STEM:
        return DRUMS
    if stem_name == PERCUSSION_STEM:
        return DRUMLESS if label.startswith(PITCHED_PERCUSSION) else DRUMS
    if label == CLICK_TRACK:
        return DROP
    return DRUMLESS


def route_sources(data: dict) -> tuple[list[tuple[str, str]], ...] | None:
    """Every source of a song on its side.

    Returns:
      (drums, drumless, dropped), each a list of (stemName, file name) in `data.json` order;
      None if the `drums` stem has no source (the song is skipped).
    """
    sides = {DRUMS: [], DRUMLESS: [], DROP: []}
    has_kit = False
    for stem in data["stems"]:
        name = stem["stemName"]
        for source in stem["tracks"]:
            side = source_side(name, source.get("trackType", ""))
            sides[side].append((name, f"{source['id']}.{source['extension']}"))
            has_kit = has_kit or name == DRUM_STEM
    if not has_kit:
        return None
    return sides[DRUMS], sides[DRUMLESS], sides[DROP]


# -------------------------------------------------------------------------------- folders


def _subfolders(folder: str) -> list[str]:
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if not multitrack.is_hidden(name) and os.path.isdir(os.path.join(folder, name))
    )


def _holds_songs(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(f, DATA_JSON)) for f in _subfolders(folder))


def find_songs(root: str) -> list[tuple[str, str]]:
    """(song ID, folder) of every song under `root`, sorted by ID.

    The song folders (those holding `data.json`) are looked for in `root`, in its sub-folders
    (providers, `moisesdb_v0.1/`) and one level further (`moisesdb/moisesdb_v0.1/`), at the
    shallowest level that has any. Every other folder beside a song folder must be one too.

    Raises:
      multitrack.DatasetError: no song folder, a folder without `data.json` among the song
        folders, or the same song ID in two providers.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise multitrack.DatasetError(f"{root}: no such folder (expected a MoisesDB download)")
    containers = [root] if _holds_songs(root) else []
    for level in range(2):
        if containers:
            break
        parents = [root]
        for _ in range(level):
            parents = [f for p in parents for f in _subfolders(p)]
        containers = [f for p in parents for f in _subfolders(p) if _holds_songs(f)]
    if not containers:
        raise multitrack.DatasetError(
            f"{root}: no <uuid>/{DATA_JSON} found (the MoisesDB layout: moisesdb_v0.1/<uuid>/)"
        )
    found: dict[str, str] = {}
    for container in containers:
        for folder in _subfolders(container):
            song_id = os.path.basename(folder)
            if not os.path.isfile(os.path.join(folder, DATA_JSON)):
                raise multitrack.DatasetError(
                    f"{os.path.join(folder, DATA_JSON)}: missing (a folder beside the songs)"
                )
            if song_id in found:
                raise multitrack.DatasetError(f"{folder}: song {song_id} also in {found[song_id]}")
            found[song_id] = folder
    return sorted(found.items())


def list_tracks(root: str) -> multitrack.Listing:
    """Every MoisesDB song under `root` with its drum and drumless source files.

    Songs without a `drums` stem are skipped with the reason `NO_DRUMS`. Whether the listed
    files exist is checked by `multitrack.checked_listing`, not here.

    Raises:
      multitrack.DatasetError: see `find_songs` and `read_data_json`.
    """
    listing = multitrack.Listing(tracks=[])
    for song_id, folder in find_songs(root):
        routed = route_sources(read_data_json(os.path.join(folder, DATA_JSON)))
        if routed is None:
            listing.skip(NO_DRUMS, song_id)
            continue
        drums, drumless, dropped = (
            tuple(os.path.join(folder, stem, name) for stem, name in side) for side in routed
        )
        if dropped:
            logging.debug("moisesdb: %s: click track(s) left out: %s", song_id, dropped)
        # Sources of one song start together; the authors' package pads them to the longest.
        track = multitrack.Track(song_id, SOURCE, drums, drumless, max_length_mismatch_s=None)
        listing.tracks.append(track)
    return listing


class Builder(multitrack.MultitrackBuilder):
    """MoisesDB songs with a drums stem as drum / drumless clip pairs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: drums = the drums stem and unpitched percussion; click "
        "tracks dropped; 80/10/10 split by recording.",
    }
    BUILDER_CONFIGS = multitrack.default_configs()
    HOMEPAGE = "https://music.ai/research/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request and download MoisesDB from music.ai/research (the archive unpacks to
    moisesdb/moisesdb_v0.1/<uuid>/); pass the folder holding moisesdb_v0.1/ (or its parent, or
    the song folders themselves) as --manual_dir.
    """

    def list_tracks(self, root: str) -> multitrack.Listing:
        return list_tracks(root)
