"""Drum notes as a General MIDI file whose bars line up with the song, and back to audio.

    notes = transcriber.notes(drums_L)                     # (N, 3): onset s, GM key, velocity
    song = midi.drum_midi(notes, beats_Kx2, end=seconds)   # pretty_midi.PrettyMIDI
    midi.write_midi("song_drums.mid", song)                # whole file or none
    audio_L = midi.render(song, length=len(drums_L))       # TimGM6mb.sf2, offline

The file (Standard MIDI file type 1, `RESOLUTION` ticks a quarter note) has a conductor track
(tempo, time signatures, a text event "end" at the end of the audio) and one drum track
("Drums", General MIDI channel 10, program 0) whose notes last `NOTE_SECONDS` (or up to the next
hit of the same key). pretty_midi reads it (`get_beats`, `get_downbeats`) and so do DAWs.

**The tempo map** follows the given beats (K, 2) (time s, position in the bar, 1 = downbeat;
e.g. the tracked beats of a song, `jdrum.beat.dbn.decode`), so that a DAW's beats and bars fall
where the song's are (`tempo_map_error` measures it: under 1 ms at `RESOLUTION` 960):

* every given beat is a quarter note and gets a tempo of its own, from the time to the next beat
  (rounded to whole microseconds a quarter, the rounding carried on so it never adds up); after
  the last beat the last tempo holds;
* the time before the first beat t0 (the MIDI starts at 0 s and tick 0 is bar 1, beat 1, where
  a DAW puts the audio) is filled with the first beat interval d extrapolated back: round(t0 / d)
  quarter notes, stretched to end exactly at t0, whose positions count back from the first
  beat's. When t0 < d / 2 it is one shorter note, an eighth, 16th or 32nd (whichever makes its
  quarter closest to d) in a bar of its own (1/8, 1/16 or 1/32); a t0 under
  60 / `MAX_BPM` / 8 s (7.8 ms), which would need a faster tempo than DAWs take, puts the first
  beat at 0 s instead (that beat alone is off, by t0);
* a bar starts at tick 0 and at every beat at position 1, and holds the beats up to the next
  one: its time signature is (number of beats)/4, written where it changes. So a pickup (a first
  beat at position 3 of 4) is a short first bar, a 3/4 → 4/4 change is a time signature event,
  and `get_downbeats()` gives the starts of the bars before the first downbeat (0 s, and t0
  after a short pickup) and then the beats at position 1. The last bar keeps the meter of the
  one before when the beats stop inside it. A stretch of more than 12 beats without a downbeat,
  or of 6, 9 or 12 beats (MIDI readers count those as compound meters, two to four dotted
  beats), is cut into bars of 4 and the rest;
* no beats: 120 BPM in 4/4; one beat: its interval is taken as 0.5 s.

Notes are put on ticks through the same piecewise-linear map (within half a tick, 0.26 ms at
120 BPM). `write_midi` writes through mido with the map's exact tempos (pretty_midi's own
`write` truncates them to whole microseconds, which drifts over a song) and never leaves a
partial file. `render` plays the drum notes with the soundfont of `jdrum.datasets.soundfont`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import tempfile

import mido
import numpy as np
import pretty_midi

from jdrum import audio
from jdrum.datasets import soundfont

RESOLUTION = 960  # ticks a quarter note
NOTE_SECONDS = 0.1  # length of every drum note (drums ring on however long the note lasts)
DEFAULT_BPM = 120.0  # without beats, and the interval of a single beat
MAX_BPM = 960.0  # the fastest tempo DAWs take (Reaper's limit; Logic and Live allow ~999)
PICKUP_UNITS = (8, 16, 32)  # note values of a pickup shorter than half a beat
MAX_BAR = 12  # longer stretches without a downbeat are cut into bars of 4
RENDER_TAIL_S = 1.0  # what `render` plays after the last note when no length is given
END_TEXT = "end"  # the conductor track's text event at the end of the audio
TRACK_NAME = "Drums"


@dataclasses.dataclass(frozen=True)
class TempoMap:
    """A piecewise-linear map between seconds and ticks (module docstring): beat b lies at
    `times[b]` s and tick `ticks[b]`, and from there the tempo is `tempos[b]` µs a quarter."""

    times: np.ndarray  # (B,) float64 seconds, times[0] = 0
    ticks: np.ndarray  # (B,) int64, ticks[0] = 0
    tempos: np.ndarray  # (B,) int64 µs per quarter note from each beat on
    signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator) where it changes

    def tick(self, seconds) -> np.ndarray:
        """The nearest ticks of times in seconds (before 0 s: tick 0)."""
        seconds = np.maximum(np.asarray(seconds, np.float64), 0.0)
        b = np.maximum(np.searchsorted(self.times, seconds, side="right") - 1, 0)
        quarters = (seconds - self.times[b]) * 1e6 / self.tempos[b]
        return np.rint(self.ticks[b] + quarters * RESOLUTION).astype(np.int64)


def _clean_beats(beats_Kx2) -> tuple[np.ndarray, np.ndarray]:
    """(times, positions) of the given beats: sorted, at or after 0 s, 1 ms apart at least."""
    if beats_Kx2 is None:
        return np.zeros(0), np.zeros(0, np.int64)
    beats = np.asarray(beats_Kx2, np.float64)
    if beats.size == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    if beats.ndim != 2 or beats.shape[1] != 2:
        raise ValueError(f"beats must be (K, 2) [time s, position in bar], got {beats.shape}")
    if not np.isfinite(beats).all():
        raise ValueError("beats hold NaN or infinite values")
    beats = beats[np.argsort(beats[:, 0], kind="stable")]
    beats = beats[beats[:, 0] >= 0]
    keep = np.concatenate([[True], np.diff(beats[:, 0]) >= 1e-3]) if len(beats) else []
    beats = beats[keep]
    return beats[:, 0], np.maximum(np.rint(beats[:, 1]), 1).astype(np.int64)


def _split_bar(n: int) -> list[int]:
    """A bar of n beats as bars that MIDI readers count as n quarter-note beats."""
    parts = []
    while n > MAX_BAR:
        parts.append(4)
        n -= 4
    if n > 3 and n % 3 == 0:  # 6/4, 9/4, 12/4 read as compound meters
        parts.append(4)
        n -= 4
    return [*parts, n]


def _bar_length(positions: np.ndarray) -> int:
    """Beats in the first whole bar (downbeat to downbeat), else the largest position if over 1,
    else 4."""
    downbeats = np.flatnonzero(positions == 1)
    if len(downbeats) >= 2:
        return int(downbeats[1] - downbeats[0])
    largest = int(positions.max(initial=0))
    return largest if largest > 1 else 4


def _pickup(first: float, interval: float, position: int, bar: int) -> list[tuple[float, int, int]]:
    """The MIDI beats before a first given beat at `first` s: [(time, note value, position)],
    position 0 for the short pickup (a bar of its own); [] when there are none."""
    count = round(first / interval)
    if count >= 1:  # whole beats, stretched to end at the first beat
        return [
            (first * (count - k) / count, 4, (position - 1 - k) % bar + 1)
            for k in range(count, 0, -1)
        ]
    if first <= 0:
        return []
    units = [u for u in PICKUP_UNITS if 60.0 / (first * u / 4) <= MAX_BPM]
    if not units:
        return []
    unit = min(units, key=lambda u: abs(math.log(first * u / 4 / interval)))
    return [(0.0, unit, 0)]


def tempo_map(beats_Kx2=None) -> TempoMap:
    """The tempo map of the module docstring for beats (K, 2) [time s, position], or None."""
    times, positions = _clean_beats(beats_Kx2)
    if len(times) == 0:
        tempo = round(60e6 / DEFAULT_BPM)
        return TempoMap(np.zeros(1), np.zeros(1, np.int64), np.array([tempo]), [(0, 4, 4)])
    interval = float(times[1] - times[0]) if len(times) >= 2 else 60.0 / DEFAULT_BPM
    bar = max(_bar_length(positions), int(positions[0]))
    pickup = _pickup(float(times[0]), interval, int(positions[0]), bar)
    times = times.copy()
    if not pickup:
        times[0] = 0.0  # at 0 s already, or too close to it for a pickup (docstring)
    beat_times = np.array([t for t, _, _ in pickup] + times.tolist())
    units = np.array([u for _, u, _ in pickup] + [4] * len(times))
    downbeat = np.array([p == 1 for _, _, p in pickup] + (positions == 1).tolist())
    ticks = np.concatenate([[0], np.cumsum(RESOLUTION * 4 // units[:-1])]).astype(np.int64)
    # Tempos from the time each beat is actually reached, so rounding never accumulates.
    tempos = np.zeros(len(beat_times), np.int64)
    reached = np.zeros(len(beat_times))
    for b in range(len(beat_times) - 1):
        quarters = (ticks[b + 1] - ticks[b]) / RESOLUTION
        tempos[b] = max(1, round((beat_times[b + 1] - reached[b]) * 1e6 / quarters))
        reached[b + 1] = reached[b] + tempos[b] * quarters / 1e6
    tempos[-1] = tempos[-2] if len(times) >= 2 else round(interval * 1e6)
    return TempoMap(reached, ticks, tempos, _signatures(ticks, units, downbeat, bar))


def _signatures(ticks, units, downbeat, bar: int) -> list[tuple[int, int, int]]:
    """(tick, numerator, denominator) where the time signature changes: a bar starts at tick 0,
    after a short pickup and at every downbeat; the last bar, where the beats stop, is as long
    as the whole bar before it (else `bar`) if it holds fewer beats."""
    starts = downbeat.copy()
    starts[0] = True
    if units[0] != 4 and len(starts) > 1:
        starts[1] = True  # the short pickup is a bar of its own
    first_beats = np.flatnonzero(starts).tolist()
    lengths = np.diff([*first_beats, len(ticks)]).tolist()
    whole = [n for b, n in zip(first_beats[:-1], lengths[:-1], strict=True) if downbeat[b]]
    if downbeat[first_beats[-1]]:  # (a song of a pickup only keeps it)
        lengths[-1] = max(lengths[-1], whole[-1] if whole else bar)

    def tick(b):  # beats after the last one are quarter notes
        return int(ticks[min(b, len(ticks) - 1)] + max(0, b - len(ticks) + 1) * RESOLUTION)

    signatures, current = [], None
    for b, n in zip(first_beats, lengths, strict=True):
        for part in _split_bar(n):
            signature = (part, int(units[b]) if b < len(units) else 4)
            if signature != current:
                signatures.append((tick(b), *signature))
                current = signature
            b += part
    return signatures


def _notes(notes_Nx3) -> np.ndarray:
    """(N, 3) float64 notes sorted by onset; shape, values and keys checked."""
    notes = np.asarray(notes_Nx3, np.float64)
    if notes.size == 0:
        return np.zeros((0, 3))
    if notes.ndim != 2 or notes.shape[1] != 3:
        raise ValueError(f"notes must be (N, 3) [onset s, key, velocity], got {notes.shape}")
    if not np.isfinite(notes).all():
        raise ValueError("notes hold NaN or infinite values")
    keys = notes[:, 1]
    if np.any(keys != np.rint(keys)) or np.any((keys < 0) | (keys > 127)):
        raise ValueError("note keys must be MIDI keys, whole numbers from 0 to 127")
    return notes[np.argsort(notes[:, 0], kind="stable")]


def _note_events(notes: np.ndarray, tmap: TempoMap) -> list[tuple[int, int, int, int]]:
    """[(tick, 0 off / 1 on, key, velocity)] of notes (`drum_midi`), in order."""
    on = tmap.tick(notes[:, 0])
    off = tmap.tick(np.maximum(notes[:, 0], 0) + NOTE_SECONDS)
    keys = notes[:, 1].astype(np.int64)
    velocities = np.clip(np.rint(notes[:, 2]), 1, 127).astype(np.int64)
    events = []
    for key in np.unique(keys):
        hits = np.flatnonzero(keys == key)  # by onset: `_notes` sorts them
        starts, first = np.unique(on[hits], return_index=True)
        loudest = np.maximum.reduceat(velocities[hits], first)
        stops = np.minimum(off[hits][first], np.append(starts[1:], np.iinfo(np.int64).max))
        stops = np.maximum(stops, starts + 1)
        for start, stop, velocity in zip(starts, stops, loudest, strict=True):
            events += [(int(start), 1, int(key), int(velocity)), (int(stop), 0, int(key), 0)]
    return sorted(events)


def drum_midi(notes_Nx3, beats_Kx2=None, *, end: float | None = None) -> pretty_midi.PrettyMIDI:
    """A drum MIDI whose tempo map follows `beats_Kx2` (module docstring).

    Args:
      notes_Nx3: [onset s, General MIDI drum key, velocity] (velocities are rounded and clipped
        to 1-127; onsets before 0 s play at 0 s; a key hit twice on one tick plays once, at the
        louder velocity).
      beats_Kx2: [time s, position in the bar (1: downbeat)], e.g. a song's tracked beats;
        None or empty: 120 BPM in 4/4.
      end: the length of the audio in seconds, where the text event "end" goes (so that readers
        see the whole song; the tracks end there or at the last note-off); None: half a beat
        after the last beat (0 s without beats).

    Returns:
      The MIDI as pretty_midi reads the file `write_midi` writes (one drum instrument).

    Raises:
      ValueError: notes or beats of the wrong shape, non-finite values, keys outside 0-127.
    """
    tmap = tempo_map(beats_Kx2)
    events = _note_events(_notes(notes_Nx3), tmap)
    if end is None:
        beats = _clean_beats(beats_Kx2)[0]
        interval = float(beats[-1] - beats[-2]) if len(beats) >= 2 else 0.0
        end = beats[-1] + interval / 2 if len(beats) else 0.0
    end_tick = int(tmap.tick(end))
    last_tick = max(end_tick, max((tick for tick, *_ in events), default=0))
    conductor = []
    for b in np.flatnonzero(np.diff(tmap.tempos, prepend=-1) != 0):
        conductor.append(
            (int(tmap.ticks[b]), mido.MetaMessage("set_tempo", tempo=int(tmap.tempos[b])))
        )
    for tick, numerator, denominator in tmap.signatures:
        message = mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)
        conductor.append((tick, message))
    conductor.append((end_tick, mido.MetaMessage("text", text=END_TEXT)))
    drums = [
        (0, mido.MetaMessage("track_name", name=TRACK_NAME)),
        (0, mido.Message("program_change", channel=soundfont.DRUM_CHANNEL, program=0)),
    ]
    for tick, is_on, key, velocity in events:
        kind = "note_on" if is_on else "note_off"
        message = mido.Message(kind, channel=soundfont.DRUM_CHANNEL, note=key, velocity=velocity)
        drums.append((tick, message))
    file = mido.MidiFile(type=1, ticks_per_beat=RESOLUTION)
    for track in (conductor, drums):
        file.tracks.append(_track(sorted(track, key=lambda e: e[0]), last_tick))
    return pretty_midi.PrettyMIDI(mido_object=file)


def _track(events: list[tuple[int, mido.Message]], end_tick: int) -> mido.MidiTrack:
    """A track of (absolute tick, message) events, in order, ending at `end_tick`."""
    track, now = mido.MidiTrack(), 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def to_mido(midi: pretty_midi.PrettyMIDI) -> mido.MidiFile:
    """A PrettyMIDI as a Standard MIDI file: its tempo changes (each tempo rounded to the
    nearest microsecond a quarter, where pretty_midi's `write` truncates), time signatures, text
    events, and per instrument its name, program, notes, control changes and pitch bends (drums
    on channel 10)."""
    ticks = midi.time_to_tick
    conductor = []
    for time, qpm in zip(*midi.get_tempo_changes(), strict=True):
        conductor.append((ticks(time), 0, mido.MetaMessage("set_tempo", tempo=round(6e7 / qpm))))
    for signature in midi.time_signature_changes:
        message = mido.MetaMessage(
            "time_signature", numerator=signature.numerator, denominator=signature.denominator
        )
        conductor.append((ticks(signature.time), 1, message))
    for text in midi.text_events:
        conductor.append((ticks(text.time), 2, mido.MetaMessage("text", text=text.text)))
    end_tick = ticks(midi.get_end_time())
    file = mido.MidiFile(type=1, ticks_per_beat=midi.resolution)
    file.tracks.append(_track([(t, m) for t, _, m in sorted(conductor, key=_order)], end_tick))
    melodic = iter(c for c in range(16) if c != soundfont.DRUM_CHANNEL)
    for instrument in midi.instruments:
        channel = soundfont.DRUM_CHANNEL if instrument.is_drum else next(melodic) % 16
        events = [(0, 0, mido.MetaMessage("track_name", name=instrument.name))]
        events = events if instrument.name else []
        events.append(
            (0, 1, mido.Message("program_change", channel=channel, program=instrument.program))
        )
        for change in instrument.control_changes:
            message = mido.Message(
                "control_change", channel=channel, control=change.number, value=change.value
            )
            events.append((ticks(change.time), 2, message))
        for bend in instrument.pitch_bends:
            message = mido.Message("pitchwheel", channel=channel, pitch=bend.pitch)
            events.append((ticks(bend.time), 2, message))
        for note in instrument.notes:
            off = mido.Message("note_off", channel=channel, note=note.pitch, velocity=0)
            on = mido.Message("note_on", channel=channel, note=note.pitch, velocity=note.velocity)
            events += [(ticks(note.end), 3, off), (ticks(note.start), 4, on)]
        file.tracks.append(_track([(t, m) for t, _, m in sorted(events, key=_order)], end_tick))
    return file


def _order(event) -> tuple[int, int]:
    return event[0], event[1]  # by tick, then kind (note-offs before note-ons)


def write_midi(path: str | os.PathLike, midi: pretty_midi.PrettyMIDI) -> None:
    """Writes `midi` (`to_mido`) to `path`, whole or not at all: into a temporary file in the
    same folder, then renamed over `path`.

    Raises:
      FileNotFoundError: (one line) the folder of `path` does not exist (checked first).
      IsADirectoryError: (one line) `path` is a folder.
    """
    check_output(path)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    file = to_mido(midi)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder
    )
    try:
        with os.fdopen(handle, "wb") as f:
            file.save(file=f)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def check_output(path: str | os.PathLike) -> None:
    """The checks of `write_midi` that need no MIDI, for entry points to make before any work.

    Raises:
      FileNotFoundError, IsADirectoryError: as `write_midi`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder (for {path})")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder, not a MIDI file name")


def drum_notes(midi: pretty_midi.PrettyMIDI) -> np.ndarray:
    """(N, 3) [onset s, key, velocity] of the drum instruments' notes, by onset."""
    notes = [
        (note.start, note.pitch, note.velocity)
        for instrument in midi.instruments
        if instrument.is_drum
        for note in instrument.notes
    ]
    notes = np.asarray(notes, np.float64).reshape(-1, 3)
    return notes[np.argsort(notes[:, 0], kind="stable")]


def can_render() -> bool:
    """Whether `render` can run: the soundfont renderer (tinysoundfont, the `soundfont` extra)
    is installed."""
    return importlib.util.find_spec("tinysoundfont") is not None


def render(
    midi_or_notes, kit: int = 0, sample_rate: int = audio.SAMPLE_RATE, length: int | None = None
) -> np.ndarray:
    """Drum notes played by the soundfont (`jdrum.datasets.soundfont`, TimGM6mb.sf2).

    Args:
      midi_or_notes: a PrettyMIDI (its drum instruments) or notes (N, 3) as for `drum_midi`.
      kit: the soundfont's drum kit (`soundfont.DRUM_KITS`; 0: Standard).
      sample_rate: output rate in Hz.
      length: output samples; None: up to `RENDER_TAIL_S` after the last note.

    Returns:
      (length,) float32 mono audio.
    """
    if isinstance(midi_or_notes, pretty_midi.PrettyMIDI):
        notes = drum_notes(midi_or_notes)
    else:
        notes = _notes(midi_or_notes)
    if length is None:
        length = round((notes[:, 0].max(initial=0.0) + RENDER_TAIL_S) * sample_rate)
    starts = np.rint(np.maximum(notes[:, 0], 0) * sample_rate).astype(np.int64)
    velocities = np.clip(np.rint(notes[:, 2]), 1, 127) / soundfont.VELOCITY_SCALE
    track = soundfont.Track(
        soundfont.DRUM_BANK, kit, starts, notes[:, 1].astype(np.int64), velocities
    )
    return soundfont.play([track], int(length), sample_rate)


def tempo_map_error(midi: pretty_midi.PrettyMIDI, beats_Kx2) -> float:
    """The largest distance in seconds between a given beat and the nearest of the MIDI's beats
    (`get_beats()`); 0 without beats."""
    times = _clean_beats(beats_Kx2)[0]
    if len(times) == 0:
        return 0.0
    grid = np.append(midi.get_beats(), np.inf)
    nearest = np.clip(np.searchsorted(grid, times), 1, len(grid) - 1)
    distance = np.minimum(np.abs(grid[nearest] - times), np.abs(grid[nearest - 1] - times))
    return float(distance.max())
