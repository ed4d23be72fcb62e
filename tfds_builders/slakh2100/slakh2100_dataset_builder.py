"""slakh2100: Slakh2100(-redux), synthesised from Lakh MIDI, as drum / drumless clip records.

Slakh2100 renders 2,100 Lakh MIDI files with sample-based virtual instruments: each
`TrackNNNNN/` holds `metadata.yaml` (one entry per MIDI instrument, `stems: {S00: {...}}`),
`stems/SNN.flac` (mono 44.1 kHz, the rendered instruments; `mix.flac` is their sum),
`MIDI/SNN.mid` (the instrument's notes, with the song's tempo map) and `all_src.mid`. Routing
(`route_stems`):

- drums = every stem whose metadata says `is_drum: true` or `inst_class: Drums` (the General
  MIDI percussion channel, rendered by a drum-kit patch); a track without a rendered drum stem
  is skipped and counted;
- drumless = every other rendered stem. Slakh renders no `Percussive` program (woodblock, taiko,
  synth drum: no patch, never rendered); `Chromatic Percussion` (glockenspiel, marimba,
  vibraphone, tubular bells) and timpani (a `Strings` program) are pitched and drumless.

A stem is rendered when its metadata says `audio_rendered: true` (its audio file must then be
there) or its file exists anyway (the mix is the sum of every file in `stems/`).

Clip records carry annotations from the drum stems' MIDI files: `true_beats` and `tempo` from the
tempo map (`set_tempo`) and time signatures (`beat_grid`), and `drum_notes`, every drum note-on
(onset s, General MIDI key, velocity).

Splits: Slakh's own folders (`train/`, `validation/`, `test/`); the tracks of `omitted/`
(Slakh2100-redux: the 390 tracks whose MIDI file duplicates another's) are skipped and counted.
Without split folders (BabySlakh) the recording hash splits 80/10/10.

    python -m jdrum.build_dataset slakh2100 --manual_dir ~/data/slakh2100_flac_redux \
        --data_dir data/tfds
"""

from __future__ import annotations

import dataclasses
import os
import re

import mido
import numpy as np
import tensorflow_datasets as tfds
import yaml
from absl import logging

from jdrum.datasets import multitrack

SOURCE = "slakh2100"
SPLIT_FOLDERS = ("train", "validation", "test")
OMITTED_FOLDER = "omitted"  # Slakh2100-redux: the tracks with duplicated MIDI
METADATA = "metadata.yaml"
STEMS_DIR, MIDI_DIR = "stems", "MIDI"
AUDIO_EXTENSIONS = (".flac", ".wav")  # the release, or a copy converted by slakh-utils
DRUM_CLASS = "Drums"
OMITTED = "omitted by Slakh2100-redux (duplicated MIDI)"
NO_DRUMS = "no rendered drum stem"
_TRACK = re.compile(r"^Track\d+$")
_STEM = re.compile(r"^S\d+$")
# A MIDI file without time signature is in 4/4 (the MIDI standard), without tempo at 120 BPM.
DEFAULT_SIGNATURE = (4, 4)
DEFAULT_TEMPO = 500_000  # microseconds per quarter note


# ----------------------------------------------------------------------------------- MIDI


@dataclasses.dataclass(frozen=True)
class TempoMap:
    """The timing of a MIDI file: ticks per quarter note, tempo and time-signature changes."""

    ticks_per_beat: int
    tempos: tuple[tuple[int, int], ...]  # (tick, microseconds per quarter note), from tick 0
    signatures: tuple[tuple[int, int, int], ...]  # (tick, numerator, denominator), from tick 0

    def seconds(self, ticks) -> np.ndarray:
        """Times in seconds of (fractional) ticks."""
        ticks = np.asarray(ticks, np.float64)
        starts = np.array([t for t, _ in self.tempos], np.float64)
        rates = np.array([us for _, us in self.tempos], np.float64) / (1e6 * self.ticks_per_beat)
        offsets = np.concatenate([[0.0], np.cumsum(np.diff(starts) * rates[:-1])])
        k = np.searchsorted(starts, ticks, side="right") - 1
        return offsets[k] + (ticks - starts[k]) * rates[k]

    def quarter_bpm(self, ticks) -> np.ndarray:
        """The tempo in quarter notes per minute at (fractional) ticks."""
        starts = np.array([t for t, _ in self.tempos], np.float64)
        us = np.array([u for _, u in self.tempos], np.float64)
        return 60e6 / us[np.searchsorted(starts, np.asarray(ticks), side="right") - 1]

    def ticks(self, seconds: float) -> float:
        """The (fractional) tick at `seconds` (the inverse of `seconds`)."""
        starts = np.array([t for t, _ in self.tempos], np.float64)
        offsets = self.seconds(starts)
        k = int(np.searchsorted(offsets, seconds, side="right")) - 1
        rate = self.tempos[k][1] / (1e6 * self.ticks_per_beat)
        return float(starts[k] + (seconds - offsets[k]) / rate)


def _changes(events: list[tuple[int, int, tuple]], default: tuple) -> tuple:
    """(tick, *value) changes sorted by tick, the last of a tick winning, one at tick 0."""
    by_tick = {}
    for tick, _, value in sorted(events, key=lambda e: (e[0], e[1])):
        by_tick[tick] = value
    by_tick.setdefault(0, default)
    return tuple((tick, *value) for tick, value in sorted(by_tick.items()))


def read_midi(path: str) -> tuple[TempoMap, np.ndarray]:
    """The tempo map and the note-ons of a MIDI file.

    Returns:
      (tempo map, (j, 3) float64 notes: onset in s, key, velocity 1-127; sorted by onset, key).

    Raises:
      multitrack.DatasetError: one line naming the file, when it is missing or not MIDI.
    """
    if not os.path.isfile(path):
        raise multitrack.DatasetError(f"{path}: missing (the drum stem's MIDI file)")
    try:
        midi = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise multitrack.DatasetError(f"{path}: unreadable MIDI file ({reason})") from None
    if midi.type == 2 or midi.ticks_per_beat <= 0:
        raise multitrack.DatasetError(f"{path}: unreadable MIDI file (not a type 0 or 1 file)")
    tempos, signatures, onsets = [], [], []
    order = 0  # file order, so that the last of several changes at one tick wins
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            order += 1
            if message.type == "set_tempo":
                tempos.append((tick, order, (message.tempo,)))
            elif message.type == "time_signature":
                signatures.append((tick, order, (message.numerator, message.denominator)))
            elif message.type == "note_on" and message.velocity > 0:
                onsets.append((tick, message.note, message.velocity))
    tempo_map = TempoMap(
        midi.ticks_per_beat,
        _changes(tempos, (DEFAULT_TEMPO,)),
        _changes(signatures, DEFAULT_SIGNATURE),
    )
    if min(us for _, us in tempo_map.tempos) <= 0 or min(s[1] for s in tempo_map.signatures) < 1:
        raise multitrack.DatasetError(f"{path}: unreadable MIDI file (a tempo or meter of 0)")
    notes = np.array(onsets, np.float64).reshape(-1, 3)
    notes[:, 0] = tempo_map.seconds(notes[:, 0])
    return tempo_map, notes[np.lexsort((notes[:, 1], notes[:, 0]))]


def beat_grid(tempo_map: TempoMap, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The beats of a tempo map from 0 to `end_s` (excluded), with their positions and tempi.

    The beat is the time signature's denominator note, or its dotted value in compound meters
    (6/8, 9/8, 12/8: a numerator divisible by 3 and above 3, as `pretty_midi.get_beats`
    counts); a bar starts at every time-signature change.

    Returns:
      ((k, 2) float64 [time in s, position in bar, 1 = downbeat], (k,) tempo in beats per
      minute at each beat).
    """
    end_tick = tempo_map.ticks(end_s)
    signatures = tempo_map.signatures
    times, positions, tempi = [], [], []
    for k, (start, numerator, denominator) in enumerate(signatures):
        stop = signatures[k + 1][0] if k + 1 < len(signatures) else np.inf
        compound = numerator % 3 == 0 and numerator > 3
        beat_ticks = tempo_map.ticks_per_beat * 4 / denominator * (3 if compound else 1)
        per_bar = numerator // 3 if compound else numerator
        ticks = np.arange(start, min(stop, end_tick), beat_ticks)
        times.append(tempo_map.seconds(ticks))
        positions.append(np.arange(len(ticks)) % per_bar + 1)
        tempi.append(tempo_map.quarter_bpm(ticks) * denominator / 4 / (3 if compound else 1))
    beats = np.stack([np.concatenate(times), np.concatenate(positions)], axis=-1)
    keep = beats[:, 0] < end_s  # the float tick of end_s may round past it
    return beats[keep], np.concatenate(tempi)[keep]


# ------------------------------------------------------------------------------ metadata


def _invalid(path: str, reason: str) -> multitrack.DatasetError:
    return multitrack.DatasetError(f"{path}: unreadable metadata YAML ({reason})")


def read_metadata(path: str) -> dict:
    """Reads and checks a track's `metadata.yaml`: a `stems` mapping of `S<number>` keys, each a
    mapping whose `is_drum` / `audio_rendered` / `midi_saved`, when present, are booleans.

    Raises:
      multitrack.DatasetError: one line, `<path>: unreadable metadata YAML (<reason>)`.
    """
    if not os.path.isfile(path):
        raise multitrack.DatasetError(f"{path}: missing (every Slakh track folder has one)")
    try:
        with open(path, encoding="utf-8") as f:
            metadata = yaml.safe_load(f)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        raise _invalid(path, f"{problem}{where}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise _invalid(path, " ".join(str(error).split())) from None
    if not isinstance(metadata, dict):
        raise _invalid(path, f"a {type(metadata).__name__}, not a mapping")
    stems = metadata.get("stems")
    if not isinstance(stems, dict) or not stems:
        raise _invalid(path, "no 'stems' mapping")
    for key, stem in stems.items():
        if not isinstance(key, str) or not _STEM.match(key):
            raise _invalid(path, f"stem key {key!r} is not S<number>")
        if not isinstance(stem, dict):
            raise _invalid(path, f"stem {key} is not a mapping")
        for field in ("is_drum", "audio_rendered", "midi_saved"):
            if field in stem and not isinstance(stem[field], bool):
                raise _invalid(path, f"stem {key}: {field} is {stem[field]!r}, not true/false")
    return metadata


def is_drum_stem(stem: dict) -> bool:
    """A stem of the General MIDI percussion channel: `is_drum: true` or `inst_class: Drums`."""
    return stem.get("is_drum") is True or stem.get("inst_class") == DRUM_CLASS


def route_stems(metadata: dict, on_disk=frozenset()) -> tuple[list[str], list[str]] | None:
    """Which stems are drums and which are not (the policy of the module docstring).

    Args:
      metadata: a track's `metadata.yaml` (`read_metadata`).
      on_disk: keys of the stems whose audio file exists (rendered whatever the metadata says).

    Returns:
      (drum stem keys, drumless stem keys), sorted, of the rendered stems; None if no drum stem
      is rendered (the track is skipped).
    """
    drums, drumless = [], []
    for key, stem in sorted(metadata["stems"].items()):
        if stem.get("audio_rendered") is True or key in on_disk:
            (drums if is_drum_stem(stem) else drumless).append(key)
    return (drums, drumless) if drums else None


# -------------------------------------------------------------------------------- folders


def _subfolders(folder: str) -> list[str]:
    return sorted(
        name
        for name in os.listdir(folder)
        if not multitrack.is_hidden(name) and os.path.isdir(os.path.join(folder, name))
    )


def _is_root(folder: str) -> bool:
    names = _subfolders(folder)
    return any(n in (*SPLIT_FOLDERS, OMITTED_FOLDER) or _TRACK.match(n) for n in names)


def find_root(root: str) -> str:
    """`root` if it holds the split folders or track folders, else its only sub-folder that
    does (`slakh2100_flac_redux/` inside the download folder)."""
    if not os.path.isdir(root):
        raise multitrack.DatasetError(f"{root}: no such folder (expected a Slakh2100 download)")
    if _is_root(root):
        return root
    children = [os.path.join(root, name) for name in _subfolders(root)]
    if len(children) == 1 and _is_root(children[0]):
        return children[0]
    raise multitrack.DatasetError(
        f"{root}: no train/, validation/, test/ or TrackNNNNN/ folder (the Slakh2100 layout)"
    )


def find_tracks(root: str) -> list[tuple[str, str, str | None]]:
    """(track ID, folder, split folder or None) of every track under `root`, sorted by ID.

    Raises:
      multitrack.DatasetError: the same track ID in two folders.
    """
    base = find_root(os.path.abspath(root))
    subsets = [s for s in (*SPLIT_FOLDERS, OMITTED_FOLDER) if os.path.isdir(os.path.join(base, s))]
    found: dict[str, tuple[str, str | None]] = {}
    for subset in subsets or [None]:
        parent = os.path.join(base, subset) if subset else base
        for name in _subfolders(parent):
            if not _TRACK.match(name):
                continue
            folder = os.path.join(parent, name)
            if name in found:
                raise multitrack.DatasetError(f"{folder}: track {name} also in {found[name][0]}")
            found[name] = (folder, subset)
    if subsets and OMITTED_FOLDER not in subsets:
        logging.warning(
            "%s: no omitted/ folder; if this is the original Slakh2100 (not -redux), 390 tracks "
            "repeat the MIDI of others, some across splits (slakh-utils' splits/resplit_slakh.py "
            "-s redux.json converts it)",
            base,
        )
    return sorted((name, folder, subset) for name, (folder, subset) in found.items())


def _audio_files(folder: str) -> dict[str, str]:
    """Stem key -> its audio file in `<folder>/stems/` (.flac before .wav)."""
    stems_dir = os.path.join(folder, STEMS_DIR)
    found = {}
    if not os.path.isdir(stems_dir):
        return found
    for extension in reversed(AUDIO_EXTENSIONS):
        for name in os.listdir(stems_dir):
            key, ext = os.path.splitext(name)
            if ext.lower() == extension and _STEM.match(key) and not multitrack.is_hidden(name):
                found[key] = os.path.join(stems_dir, name)
    return found


def track_annotations(drum_midis: list[str], end_s: float):
    """(true beats, tempo, drum notes) of a track from its drum stems' MIDI files: the beat grid
    of the first file's tempo map up to `end_s`, and every file's note-ons."""
    tempo_map, notes = read_midi(drum_midis[0])
    for path in drum_midis[1:]:
        notes = np.concatenate([notes, read_midi(path)[1]])
    notes = notes[np.lexsort((notes[:, 1], notes[:, 0]))]
    beats, tempo = beat_grid(tempo_map, end_s)
    return beats, tempo, notes.astype(np.float32)


def list_tracks(root: str) -> multitrack.Listing:
    """Every Slakh2100 track under `root` with its drum and drumless stems and annotations.

    Tracks of `omitted/` and tracks without a rendered drum stem are skipped and counted.

    Raises:
      multitrack.DatasetError: a track folder without (or with unreadable) `metadata.yaml`, an
        audio file in `stems/` that the metadata does not list, a rendered drum stem or its
        MIDI file missing or unreadable, the same track in two folders.
    """
    listing = multitrack.Listing(tracks=[])
    for song_id, folder, subset in find_tracks(root):
        if subset == OMITTED_FOLDER:
            listing.skip(OMITTED, song_id)
            continue
        metadata = read_metadata(os.path.join(folder, METADATA))
        on_disk = _audio_files(folder)
        for key, path in on_disk.items():
            if key not in metadata["stems"]:
                raise multitrack.DatasetError(f"{path}: a stem that {METADATA} does not list")
        routed = route_stems(metadata, frozenset(on_disk))
        if routed is None:
            listing.skip(NO_DRUMS, song_id)
            continue
        drums, drumless = (
            tuple(on_disk.get(k, os.path.join(folder, STEMS_DIR, f"{k}.flac")) for k in keys)
            for keys in routed
        )
        stems = metadata["stems"]
        # A drum stem whose MIDI was not saved (`midi_saved: false`, no file) only lacks
        # annotations; any other missing MIDI file is an error (`read_midi`).
        midis = [os.path.join(folder, MIDI_DIR, f"{key}.mid") for key in routed[0]]
        midis = [
            path
            for key, path in zip(routed[0], midis, strict=True)
            if stems[key].get("midi_saved", True) or os.path.isfile(path)
        ]
        annotations = {}
        if midis:
            end_s = multitrack.file_info(drums[0]).seconds  # raises on a missing stem
            beats, tempo, notes = track_annotations(midis, end_s)
            annotations = dict(true_beats=beats, tempo=tempo, drum_notes=notes)
        # Every stem is rendered to the same end (the MIDI's end plus 5 s of release).
        track = multitrack.Track(
            song_id,
            SOURCE,
            drums,
            drumless,
            max_length_mismatch_s=1.0,
            assigned_split=subset,
            **annotations,
        )
        listing.tracks.append(track)
    return listing


# -------------------------------------------------------------------------------- builder


@dataclasses.dataclass(eq=False)
class SlakhConfig(multitrack.MultitrackConfig):
    """Every Slakh record carries its drum notes."""

    drum_notes: bool = True


class Builder(multitrack.MultitrackBuilder):
    """Slakh2100 tracks with a rendered drum kit as drum / drumless clip pairs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: drums = the is_drum stems; true beats, tempo and drum notes "
        "from their MIDI; Slakh's split folders, omitted/ (redux) skipped.",
    }
    BUILDER_CONFIGS = multitrack.default_configs(SlakhConfig)
    HOMEPAGE = "http://www.slakh.com"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download Slakh2100-redux (slakh2100_flac_redux.tar.gz, Zenodo record 4599666, ~104 GB) and
    unpack it; pass the folder holding train/, validation/, test/ and omitted/ (or its parent,
    slakh2100_flac_redux/'s) as --manual_dir. An original Slakh2100 copy works too but repeats
    390 MIDI files (convert it with slakh-utils' splits/resplit_slakh.py -s redux.json);
    BabySlakh (Zenodo record 4603870: 20 tracks, 16 kHz wav, no split folders) is hash-split.
    """

    def list_tracks(self, root: str) -> multitrack.Listing:
        return list_tracks(root)
