"""A small fake Slakh2100(-redux) folder for tests, in the released layout.

`TrackNNNNN/` holds `metadata.yaml` (the fields of slakh-utils' README, written with
`yaml.safe_dump` as the generation script does), `stems/SNN.flac` (mono 44.1 kHz, 16-bit),
`MIDI/SNN.mid` (type 1, a timing track and one instrument track, as `pretty_midi` writes them)
and `all_src.mid`. Every MIDI file shares one tempo map with a tempo change (120 -> 150 BPM on
the fourth beat of bar 1) and two time-signature changes (4/4 -> 3/4 at bar 3, -> 6/8 two bars
later). Drum stems are noise bursts at their MIDI notes, the other stems tones.

The tracks: a kit track with an unrendered `Ethnic` stem (no audio, no MIDI); one whose drum
stem was not rendered (skipped); two drum stems and a `Chromatic Percussion` (marimba) stem; a
stem whose metadata says `audio_rendered: false` but whose file exists (rendered); and, in
`omitted/`, a redux-omitted track.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

import mido
import numpy as np
import soundfile
import yaml

SAMPLE_RATE = 44_100
SECONDS = 7.0
TICKS_PER_BEAT = 480
# The tempo map of every fake MIDI file: (tick, microseconds per quarter note) and
# (tick, numerator, denominator).
TEMPOS = ((0, 500_000), (1440, 400_000))
SIGNATURES = ((0, 4, 4), (3840, 3, 4), (6720, 6, 8))
LAYOUTS = ("redux", "flat")
OMITTED = "omitted by Slakh2100-redux (duplicated MIDI)"  # the builder's skip reasons
NO_DRUMS = "no rendered drum stem"


def tick_seconds(tick: float) -> float:
    """Seconds of a tick under TEMPOS, written out: 0.5 s per beat to tick 1440, then 0.4 s."""
    return tick / 480 * 0.5 if tick <= 1440 else 1.5 + (tick - 1440) / 480 * 0.4


@dataclasses.dataclass(frozen=True)
class FakeStem:
    inst_class: str
    program_num: int
    program_name: str
    side: str  # where the policy must put it: "drums", "drumless" or "none" (not rendered)
    audio_rendered: bool = True
    has_audio: bool = True  # the stem's audio file exists
    midi_saved: bool = True
    # Drum notes as (first tick, step in ticks, General MIDI key, velocity) patterns.
    pattern: tuple[tuple[int, int, int, int], ...] = ()
    plugin: str = "None"  # the patch that rendered it ("None": no patch for the program)

    @property
    def is_drum(self) -> bool:
        return self.inst_class == "Drums"


@dataclasses.dataclass(frozen=True)
class FakeTrack:
    song_id: str
    subset: str  # its folder in the "redux" layout
    stems: tuple[FakeStem, ...]
    expect: str = "kept"  # or the reason the builder skips it


# Kick on every quarter note (velocity 100), snare on every other one from beat 2 (90), closed
# hi-hat on eighths (60); a second kit's ride on quarters (70).
KIT = ((0, 480, 36, 100), (480, 960, 38, 90), (0, 240, 42, 60))
RIDE = ((0, 480, 51, 70),)


def _kit(pattern=KIT, side="drums", **kw) -> FakeStem:
    return FakeStem("Drums", 128, "Drums", side, pattern=pattern, plugin="pop_kit.nkm", **kw)


def _piano() -> FakeStem:
    return FakeStem("Piano", 0, "Acoustic Grand Piano", "drumless", plugin="the_grandeur.nkm")


def _bass() -> FakeStem:
    return FakeStem("Bass", 33, "Electric Bass (finger)", "drumless", plugin="classic_bass.nkm")


TRACKS = (
    FakeTrack(
        "Track00001",
        "train",
        (
            _piano(),
            _kit(),
            _bass(),
            FakeStem("Ethnic", 110, "Fiddle", "none", False, False, False),
        ),
    ),
    FakeTrack(
        "Track00002",
        "train",
        (
            FakeStem("Guitar", 30, "Distortion Guitar", "drumless", plugin="elektrik_guitar.nkm"),
            _kit(audio_rendered=False, has_audio=False, side="none"),
            _bass(),
        ),
        expect=NO_DRUMS,
    ),
    FakeTrack(
        "Track01501",
        "validation",
        (
            _kit(),
            FakeStem("Chromatic Percussion", 12, "Marimba", "drumless", plugin="marimba.nkm"),
            _bass(),
            _kit(RIDE),
        ),
    ),
    FakeTrack(
        "Track01876",
        "test",
        (
            _kit(),
            FakeStem(
                "Strings (continued)",
                48,
                "String Ensemble 1",
                "drumless",
                plugin="string_ensemble.nkm",
            ),
            # Stale metadata (as in BabySlakh): not rendered by its flag, but the file exists.
            FakeStem("Reed", 65, "Alto Sax", "drumless", False, plugin="alto_saxophone.nkm"),
        ),
    ),
    FakeTrack("Track00049", "omitted", (_piano(), _kit(), _bass()), expect=OMITTED),
)
KEPT = tuple(t.song_id for t in TRACKS if t.expect == "kept")


def _note_ticks(stem: FakeStem, seconds: float) -> list[tuple[int, int, int]]:
    """(tick, key, velocity) of a drum stem's pattern, up to `seconds`."""
    notes = []
    for first, step, key, velocity in stem.pattern:
        tick = first
        while tick_seconds(tick) < seconds:
            notes.append((tick, key, velocity))
            tick += step
    return notes


def drum_notes(stem: FakeStem, seconds: float = SECONDS) -> np.ndarray:
    """(j, 3) [onset s, key, velocity] of a drum stem's notes, sorted by onset and key."""
    notes = [(tick_seconds(t), key, v) for t, key, v in _note_ticks(stem, seconds)]
    notes = np.array(notes, np.float64).reshape(-1, 3)
    return notes[np.lexsort((notes[:, 1], notes[:, 0]))]


def _timing_track() -> mido.MidiTrack:
    events = [(t, mido.MetaMessage("set_tempo", tempo=us)) for t, us in TEMPOS]
    events += [
        (t, mido.MetaMessage("time_signature", numerator=n, denominator=d))
        for t, n, d in SIGNATURES
    ]
    events.append((0, mido.MetaMessage("key_signature", key="C")))
    return _track(events)


def _track(events: list[tuple[int, mido.Message]]) -> mido.MidiTrack:
    """A track of (absolute tick, message) events, in delta time, with its end."""
    track = mido.MidiTrack()
    now = 0
    for tick, message in sorted(events, key=lambda e: e[0]):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=1))
    return track


def _instrument_track(name: str, stem: FakeStem, seconds: float) -> mido.MidiTrack:
    channel = 9 if stem.is_drum else 0
    events = [
        (0, mido.MetaMessage("track_name", name=name)),
        (0, mido.Message("program_change", channel=channel, program=stem.program_num % 128)),
    ]
    if stem.is_drum:
        for tick, key, velocity in _note_ticks(stem, seconds):
            events.append((tick, mido.Message("note_on", channel=9, note=key, velocity=velocity)))
            events.append((tick + 60, mido.Message("note_off", channel=9, note=key)))
    else:  # a long C3 every 1920 ticks, to about 0.5 s before the end
        for tick in range(0, 1440 + int((seconds - 2.0) / 0.4 * 480), 1920):
            events.append((tick, mido.Message("note_on", channel=channel, note=48, velocity=80)))
            events.append((tick + 1800, mido.Message("note_off", channel=channel, note=48)))
    return _track(events)


def write_midi(path: pathlib.Path, stems: dict[str, FakeStem], seconds: float = SECONDS) -> None:
    """A type-1 MIDI file: the timing track, then one track per stem."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(_timing_track())
    for name, stem in stems.items():
        midi.tracks.append(_instrument_track(name, stem, seconds))
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)


def _stem_audio(stem: FakeStem, seed: int, seconds: float) -> np.ndarray:
    """Mono audio, peak about 0.15: noise bursts at the drum notes, or a tone."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    if not stem.is_drum:
        freq = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        return 0.1 * np.sin(2 * np.pi * freq * np.arange(n) / SAMPLE_RATE)
    x = 0.005 * rng.uniform(-1.0, 1.0, n)
    burst = np.exp(-np.arange(int(0.08 * SAMPLE_RATE)) / (0.02 * SAMPLE_RATE))
    for onset, _, velocity in drum_notes(stem, seconds):
        start = int(round(onset * SAMPLE_RATE))
        part = burst[: n - start] * velocity / 127 * 0.1
        x[start : start + len(part)] += part * rng.uniform(-1.0, 1.0, len(part))
    return x


def _metadata(track: FakeTrack) -> dict:
    stems = {}
    for k, stem in enumerate(track.stems):
        entry = {
            "audio_rendered": stem.audio_rendered,
            "inst_class": stem.inst_class,
            "is_drum": stem.is_drum,
            "midi_program_name": stem.program_name,
            "midi_saved": stem.midi_saved,
            "plugin_name": stem.plugin,
            "program_num": stem.program_num,
        }
        if stem.has_audio:
            entry["integrated_loudness"] = -13.0 - 0.01 * k
        stems[f"S{k:02d}"] = entry
    uuid = hashlib.md5(track.song_id.encode()).hexdigest()  # a Lakh file name: 32 hex digits
    return {
        "UUID": uuid,
        "audio_dir": "stems",
        "lmd_midi_dir": f"lmd_matched/O/O/H/TROOHTB128F931F9DF/{uuid}.mid",
        "midi_dir": "MIDI",
        "normalization_factor": -13.0,
        "normalized": True,
        "overall_gain": 0.18270259567062658,
        "stems": stems,
        "target_peak": -1.0,
    }


def track_folder(root: pathlib.Path, song_id: str, layout: str = "redux") -> pathlib.Path:
    """Where `write_fake_slakh(root, layout)` puts track `song_id`."""
    track = next(t for t in TRACKS if t.song_id == song_id)
    if layout == "flat":
        return root / song_id
    return root / "slakh2100_flac_redux" / track.subset / song_id


def write_fake_slakh(root: pathlib.Path, layout: str = "redux", seconds: float = SECONDS) -> dict:
    """Writes a fake Slakh2100 under `root`.

    Args:
      root: the folder to fill (the future --manual_dir).
      layout: "redux" (`slakh2100_flac_redux/{train,validation,test,omitted}/TrackNNNNN/`, the
        unpacked Slakh2100-redux archive) or "flat" (`TrackNNNNN/` directly, as BabySlakh; the
        omitted track is not written).
      seconds: length of every track (the fake tempo map is the same whatever the length).

    Returns:
      {track ID: {"status": "kept" or the skip reason, "folder": its folder, "split": its
      folder's split (None when flat), "drums": [stem audio files], "drumless": [...],
      "notes": (j, 3) drum notes of its drum stems}}.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}: {layout!r}")
    root = pathlib.Path(root)
    expected = {}
    for index, track in enumerate(TRACKS):
        if layout == "flat" and track.subset == "omitted":
            continue
        folder = track_folder(root, track.song_id, layout)
        (folder / "stems").mkdir(parents=True)
        sides = {"drums": [], "drumless": [], "none": []}
        notes = [np.zeros((0, 3))]
        saved = {}
        for k, stem in enumerate(track.stems):
            key = f"S{k:02d}"
            if stem.has_audio:
                x = _stem_audio(stem, 100 * index + k, seconds)
                path = folder / "stems" / f"{key}.flac"
                soundfile.write(path, x, SAMPLE_RATE, subtype="PCM_16")
                sides[stem.side].append(str(path))
            if stem.midi_saved:
                write_midi(folder / "MIDI" / f"{key}.mid", {key: stem}, seconds)
                saved[key] = stem
            if stem.side == "drums":
                notes.append(drum_notes(stem, seconds))
        write_midi(folder / "all_src.mid", saved, seconds)
        mix = sum(soundfile.read(p)[0] for p in sides["drums"] + sides["drumless"])
        soundfile.write(folder / "mix.flac", mix, SAMPLE_RATE, subtype="PCM_16")
        metadata = _metadata(track)
        (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata, default_flow_style=False))
        (folder / "stems" / "._S00.flac").write_bytes(b"\x00\x05\x16\x07AppleDouble")
        notes = np.concatenate(notes)
        expected[track.song_id] = {
            "status": track.expect,
            "folder": folder,
            "split": None if layout == "flat" else track.subset,
            "drums": sides["drums"],
            "drumless": sides["drumless"],
            "notes": notes[np.lexsort((notes[:, 1], notes[:, 0]))],
        }
    return expected
