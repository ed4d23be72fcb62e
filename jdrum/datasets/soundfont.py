"""General MIDI sounds for `jdrum.datasets.synth`: its note events played by a soundfont.

The soundfont is TimGM6mb.sf2 (Tim Brechbill's 6 MB General MIDI set), which the `pretty_midi`
package ships inside itself; `tinysoundfont` (Python bindings of TinySoundFont) renders it
offline, so nothing is downloaded. Drums play on the General MIDI percussion channel (channel
10) with one of the drum kits (bank 128 presets) the soundfont has; bass, chords and lead play
melodic programs (bank 0). `choose` draws a song's kit and programs from the generator it is
given and rendering has no randomness, so a seed gives bit-identical audio.

tinysoundfont is imported on the first render, not with this module: its wheel lists `pyaudio`
(live playback, which jdrum never uses) as a requirement and pyaudio builds only where the
PortAudio headers are installed, so `make install` installs tinysoundfont without it (setup.cfg,
extra `soundfont`) and a NumPy-only render needs neither.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import pathlib

import numpy as np

SOUNDFONT = "TimGM6mb.sf2"
DRUM_BANK = 128
DRUM_CHANNEL = 9  # General MIDI channel 10, counted from 0
VELOCITY_SCALE = 100  # a note of velocity 1.0 (synth's normal accent) plays at MIDI velocity 100

# General MIDI percussion keys of synth's drum instruments (`synth_sounds.KIT_GAIN`).
DRUM_KEYS = {
    "kick": 36,  # Bass Drum 1
    "snare": 38,  # Acoustic Snare
    "hat": 42,  # Closed Hi-Hat (its exclusive class chokes the open hi-hat)
    "ohat": 46,  # Open Hi-Hat
    "ride": 51,  # Ride Cymbal 1
    "crash": 49,  # Crash Cymbal 1
    "tom_hi": 50,  # High Tom
    "tom_mid": 47,  # Low-Mid Tom
    "tom_lo": 43,  # High Floor Tom
}
# The bank 128 presets of TimGM6mb.sf2 that are drum kits. It also has Jazz (32), a copy of
# Standard there, and Orchestra (48), whose tom keys play timpani; neither is used.
DRUM_KITS = {
    0: "Standard",
    8: "Room",
    16: "Power",
    24: "Electronic",
    25: "TR 808",
    40: "Brush",
}
# Kits that no training config draws (`HELD_OUT_KITS`), so that a transcriber or an LM can be
# evaluated on drums in timbres it never heard (synthstems/eval_unseen_kits); the training
# configs draw from `TRAINING_KITS`. In TimGM6mb.sf2, TR 808 has a kick, snare, hi-hats and toms
# of its own (log-mel distance 0.8-1.8 to every other kit's; only its cymbals are Electronic's)
# and Brush a brushed snare (1.7-2.4 from the others but TR 808's); Brush's kick, hi-hats and
# cymbals are Standard's and Power's. Electronic stays in training: it sits between the two
# (its snare 0.4-0.6 from Standard's and Power's), so training hears one electronic kit.
HELD_OUT_KITS = (25, 40)
TRAINING_KITS = tuple(kit for kit in DRUM_KITS if kit not in HELD_OUT_KITS)
# Melodic programs (bank 0, General MIDI numbers counted from 0) per part.
BASS_PROGRAMS = {32: "Acoustic Bass", 33: "Fingered Bass", 34: "Picked Bass", 38: "Synth Bass 1"}
CHORD_PROGRAMS = {0: "Piano 1", 4: "E.Piano 1", 16: "Organ 1", 27: "Clean Guitar"}
PAD_PROGRAMS = {48: "Strings", 50: "Synth Strings 1", 89: "Warm Pad"}  # held one-chord bars
LEAD_PROGRAMS = {11: "Vibraphone", 56: "Trumpet", 65: "Alto Sax", 73: "Flute", 80: "Square Wave"}


@dataclasses.dataclass(frozen=True)
class Instruments:
    """The soundfont presets of one song: a drum kit and a program per melodic part."""

    kit: int  # bank 128 preset, a key of DRUM_KITS
    bass: int  # bank 0 programs
    chords: int
    pad: int
    lead: int


def choose(rng, kits=None) -> Instruments:
    """Draws a song's kit and programs (all of them, so that no choice shifts another).

    Args:
      rng: a NumPy generator.
      kits: the kits (keys of `DRUM_KITS`) to draw from, in this order; None: all of
        `DRUM_KITS` (`tuple(DRUM_KITS)` draws the same).
    """

    def pick(options):
        return int(list(options)[rng.integers(len(options))])

    return Instruments(
        kit=pick(DRUM_KITS if kits is None else kits),
        bass=pick(BASS_PROGRAMS),
        chords=pick(CHORD_PROGRAMS),
        pad=pick(PAD_PROGRAMS),
        lead=pick(LEAD_PROGRAMS),
    )


@dataclasses.dataclass(frozen=True)
class Track:
    """Notes on one MIDI channel; sample positions, velocities scaled by VELOCITY_SCALE."""

    bank: int
    preset: int
    starts: np.ndarray  # (n,) int: sample of each note-on
    keys: np.ndarray  # (n,) int: MIDI keys
    velocities: np.ndarray  # (n,) float
    stops: np.ndarray | None = None  # (n,) int: sample of each note-off; None sends none (drums)


def midi_velocity(velocities) -> np.ndarray:
    """MIDI velocities (1-127) of synth's velocities (1.0: velocity `VELOCITY_SCALE`)."""
    return np.clip(np.round(VELOCITY_SCALE * np.asarray(velocities, np.float64)), 1, 127)


@functools.cache
def soundfont_path() -> pathlib.Path:
    """TimGM6mb.sf2 inside the installed `pretty_midi` package (found without importing it)."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the soundfont renderer needs pretty_midi (pip install pretty_midi)")
    path = pathlib.Path(spec.submodule_search_locations[0]) / SOUNDFONT
    if not path.is_file():
        raise FileNotFoundError(f"{SOUNDFONT} is missing from pretty_midi: {path}")
    return path


def _tinysoundfont():
    try:
        import tinysoundfont  # here, not at the top: see the module docstring
    except ImportError:
        raise ImportError(
            "the soundfont renderer needs tinysoundfont: pip install --no-deps tinysoundfont"
        ) from None
    return tinysoundfont


def play(tracks: list[Track], n: int, sr: int) -> np.ndarray:
    """Renders tracks, each on a channel of its own (drums on channel 10), offline.

    Args:
      tracks: at most 16; bank 128 tracks play as drums.
      n: output length in samples; notes from sample `n` on are dropped.
      sr: sample rate.

    Returns:
      (n,) float32 mono: the mean of the soundfont's two channels.
    """
    tsf = _tinysoundfont()
    synth = tsf.Synth(samplerate=sr)
    sfid = synth.sfload(str(soundfont_path()))
    melodic = iter(c for c in range(16) if c != DRUM_CHANNEL)
    events = []  # (sample, 0 off / 1 on, channel, key, MIDI velocity): offs first at a tie
    for track in tracks:
        drums = track.bank == DRUM_BANK
        channel = DRUM_CHANNEL if drums else next(melodic)
        synth.program_select(channel, sfid, track.bank, track.preset, is_drums=drums)
        velocity = midi_velocity(track.velocities)
        for start, key, v in zip(track.starts, track.keys, velocity, strict=True):
            events.append((int(start), 1, channel, int(key), int(v)))
        if track.stops is not None:
            for stop, key in zip(track.stops, track.keys, strict=True):
                events.append((int(stop), 0, channel, int(key), 0))
    events.sort()
    frame = 2 * np.dtype(np.float32).itemsize  # interleaved stereo float32
    buffer = memoryview(bytearray(n * frame))
    done = 0
    for sample, on, channel, key, velocity in events:
        if sample >= n:
            break
        if sample > done:  # render up to the event, so every note starts on its own sample
            synth.generate_simple(sample - done, buffer=buffer[done * frame : sample * frame])
            done = sample
        if on:
            synth.noteon(channel, key, velocity)
        else:
            synth.noteoff(channel, key)
    if n > done:
        synth.generate_simple(n - done, buffer=buffer[done * frame :])
    stereo = np.frombuffer(buffer, dtype=np.float32).reshape(n, 2)
    return (0.5 * (stereo[:, 0] + stereo[:, 1])).astype(np.float32)


def play_drums(kit: int, names, starts, velocities, n: int, sr: int) -> np.ndarray:
    """Drum hits (synth instrument names, start samples, velocities) on General MIDI kit `kit`."""
    keys = np.array([DRUM_KEYS[name] for name in names], dtype=np.int64)
    return play([Track(DRUM_BANK, kit, np.asarray(starts), keys, np.asarray(velocities))], n, sr)


def play_notes(programs, starts, stops, keys, velocities, n: int, sr: int) -> np.ndarray:
    """Melodic notes, each with its General MIDI program (one channel per program)."""
    programs, starts, stops = np.asarray(programs), np.asarray(starts), np.asarray(stops)
    keys, velocities = np.asarray(keys), np.asarray(velocities)
    tracks = []
    for program in np.unique(programs):
        m = programs == program
        tracks.append(Track(0, int(program), starts[m], keys[m], velocities[m], stops[m]))
    return play(tracks, n, sr)
