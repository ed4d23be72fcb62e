"""Synthetic multitrack songs with exact beat truth, in NumPy only.

A song is first planned (`plan_song`: the structural random decisions, no audio) and then
rendered (`render_song`): a synthesised drum kit plays a groove per style while bass, chords and
lead follow one chord progression. Every note is placed on one tempo map and the same map gives
`Song.beats`, so the beat and downbeat annotations are exact (nominal, un-humanised times).

    song = make_song(seed=3)
    song.mix, song.drumless, song.beats  # float32 audio, madmom-style (time, position) rows

Rendering is deterministic: the plan draws from `default_rng(seed)` and each part of the render
draws from its own generator derived from `(seed, part)`.

Two renderers play the same notes (`SynthConfig.renderer`): "numpy" (`synth_sounds`: drums,
bass, chords and lead synthesised here) and "soundfont" (`soundfont`: General MIDI instruments of
TimGM6mb.sf2, a drum kit (of `SynthConfig.drum_kits`) and programs drawn from the seed, for the
parts named in `SynthConfig.soundfont_parts`, the drums by default; the others stay NumPy);
"mixed" picks one of the two per song from its seed. The plan, the hit and note times and so
the beats do not depend on the renderer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jdrum.datasets import soundfont
from jdrum.datasets import synth_sounds as sounds

# One bar of each groove, one character per step on a grid of 16ths, or of eighth-note triplets
# when a bar has 3 steps per beat (swung eighths then sit on steps 0 and 2 of each beat).
# Drums: X accent, x normal, o ghost. Bass: R root, T third, F fifth, O octave, S sixth,
# B minor seventh. Comp: chord hits; a single hit per bar is held as a pad.
_GROOVES = """
rock       4/4  kick X.....x.X.x.....  snare ....X.......X...  hat x.x.x.x.x.x.x.x.
                bass R.R.R.R.R.R.R.F.  comp  x...x...x...x...
funk       4/4  kick X..x..x...X..x..  snare ....X..o.o..X..o  hat xxxxxxxxxxxxxxxx
                bass R..O..R.R.F..RO.  comp  x..x..x.x..x..x.
shuffle    4/4  kick X.....X.....      snare ...X.....X..      hat x.xx.xx.xx.x
                bass R.RT.TF.FS.S      comp  ...x.....x..
halftime   4/4  kick X.....x.......x.  snare ........X.......  hat x.x.x.x.x.x.x.x.
                bass R.....R.R.......  comp  x...............
bossa      4/4  kick X..xX..xX..xX..x  snare o..o..o...o..o..  hat x.x.x.x.x.x.x.x.
                bass R.....F.R.....F.  comp  x..x..x...x..x..
disco      4/4  kick X...X...X...X...  snare ....X.......X...  hat x...x...x...x...
                ohat ..x...x...x...x.  bass  R.O.R.O.R.O.R.O.  comp x.x...x.x.x...x.
waltz      3/4  kick X...........      snare ....x...x...      hat x.x.x.x.x.x.
                bass R.......F...      comp  ....x...x...
jazzwaltz  3/4  ride X..x.xx.x         kick  o........         hat ...o..o..
                snare ......o..        bass  R..T..F..         comp ...x....x
"""
_VELOCITY = {"X": 1.0, "x": 0.8, "o": 0.4}
_BASS_INTERVAL = {"R": 0, "O": 12, "S": 9, "B": 10}  # T and F take the chord's own third/fifth


@dataclasses.dataclass(frozen=True)
class _Style:
    """One bar of a groove on a grid of `steps_per_beat` steps per beat."""

    meter: int
    steps_per_beat: int
    drums: dict[str, str]  # instrument -> step pattern
    bass: str
    comp: str


def _parse_grooves(chart: str) -> dict[str, _Style]:
    rows = {}
    for line in chart.strip().splitlines():
        words = line.split()
        if not line[0].isspace():
            name, meter, words = words[0], int(words[1][0]), words[2:]
            rows[name] = {"meter": meter}
        rows[name].update(zip(words[::2], words[1::2], strict=True))
    styles = {}
    for name, row in rows.items():
        meter, bass, comp = row.pop("meter"), row.pop("bass"), row.pop("comp")
        styles[name] = _Style(meter, len(bass) // meter, row, bass, comp)
    return styles


_STYLES = _parse_grooves(_GROOVES)
STYLES: tuple[str, ...] = tuple(_STYLES)

# Chord roots (semitones above the key) of 4-bar progressions, and the triad quality of each
# degree (True: major third).
_PROGRESSIONS = {
    "major": ((0, 7, 9, 5), (0, 9, 5, 7), (0, 5, 7, 5), (9, 5, 0, 7), (0, 2, 5, 7)),
    "minor": ((0, 8, 3, 10), (0, 5, 7, 0), (0, 10, 8, 10), (0, 5, 10, 3), (0, 8, 5, 7)),
}
_MAJOR_THIRD = {
    "major": {0: True, 2: False, 4: False, 5: True, 7: True, 9: False},
    "minor": {0: False, 3: True, 5: False, 7: True, 8: True, 10: True},
}

_TOMS = ("snare", "tom_hi", "tom_mid", "tom_lo")  # fill voices, high to low
# Stem RMS before the common gain: the drums lead the mix, the drumless part stays rhythmic.
_STEM_RMS = {"drums": 0.3, "bass": 0.14, "chords": 0.08, "lead": 0.08}
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_FADE_S = 0.01
RENDERERS = ("numpy", "soundfont", "mixed")
PARTS = ("drums", "bass", "chords", "lead")


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Song length, tempo range, change rate and level of the synthesised songs."""

    sample_rate: int = 44_100
    min_seconds: float = 30.0  # song length range (uniform); the song ends on a bar line
    max_seconds: float = 60.0
    min_bpm: float = 60.0
    max_bpm: float = 200.0
    change_probability: float = 0.2  # fraction of songs with a tempo or a groove change
    peak: float = 0.9  # the full mix is scaled so that its peak equals this
    renderer: str = "numpy"  # "numpy", "soundfont" or "mixed" (per song: about half each)
    soundfont_parts: tuple[str, ...] = ("drums",)  # what the soundfont plays; the rest is NumPy
    # The soundfont kits a song's drums are drawn from (`soundfont.DRUM_KITS` keys, in order).
    drum_kits: tuple[int, ...] = tuple(soundfont.DRUM_KITS)

    def __post_init__(self):
        if self.renderer not in RENDERERS:
            raise ValueError(f"renderer {self.renderer!r} is not one of {RENDERERS}")
        if not set(self.soundfont_parts) <= set(PARTS):
            raise ValueError(f"soundfont_parts {self.soundfont_parts} are not all in {PARTS}")
        if not self.drum_kits or not set(self.drum_kits) <= set(soundfont.DRUM_KITS):
            raise ValueError(
                f"drum_kits {self.drum_kits} must be some of {tuple(soundfont.DRUM_KITS)}"
            )


@dataclasses.dataclass(frozen=True)
class Section:
    """Bars `start_bar .. start_bar + num_bars - 1` played at `bpm` in `style`.

    With `ramp_bars > 0` the tempo moves beat by beat from the previous section's bpm to `bpm`
    over the first `ramp_bars` bars of this section.
    """

    start_bar: int
    num_bars: int
    bpm: float
    style: str
    ramp_bars: int = 0


@dataclasses.dataclass(frozen=True)
class SongPlan:
    """Every structural random decision of a song; cheap to compute, no audio."""

    song_id: str
    seed: int
    meter: int  # beats per bar
    sections: tuple[Section, ...]
    change: str | None  # None, "tempo" or "groove"
    key_root: int  # pitch class of the key, 0 = C
    mode: str  # "major" or "minor"
    chords: tuple[tuple[int, int, int], ...]  # MIDI triads, root in octave 2; one per bar, cycled
    phrase_bars: int  # fills end every phrase (counted from each section's start)
    lead_in_s: float  # silence before the first beat
    levels_db: tuple[float, float, float]  # bass, chords, lead level relative to the default

    @property
    def styles(self) -> set[str]:
        return {s.style for s in self.sections}

    @property
    def num_bars(self) -> int:
        return sum(s.num_bars for s in self.sections)

    @property
    def duration_s(self) -> float:
        return float(_beat_grid(self.sections, self.meter, self.lead_in_s)[0][-1])


@dataclasses.dataclass(frozen=True, eq=False)
class Song:
    """Rendered stems with their beat truth."""

    plan: SongPlan
    stems: dict[str, np.ndarray]  # float32 mono, equal length: drums, bass, chords, lead
    beats: np.ndarray  # (n, 2) float64: time in s, position in bar (1 = downbeat)
    bpm: np.ndarray  # (n,) tempo at each beat: the next beat follows after 60 / bpm s
    # (j, 3) float64, one row per drum hit as rendered: onset in s (humanised, on its sample),
    # General MIDI key (`soundfont.DRUM_KEYS`), MIDI velocity 1-127; sorted by onset
    drum_notes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))
    sample_rate: int = 44_100

    @property
    def drums(self) -> np.ndarray:
        return self.stems["drums"]

    @property
    def drumless(self) -> np.ndarray:
        return self.stems["bass"] + self.stems["chords"] + self.stems["lead"]

    @property
    def mix(self) -> np.ndarray:
        return self.drums + self.drumless


# ---------------------------------------------------------------------------------------------
# Tempo map and plan.


def _beat_grid(sections, meter: int, lead_in_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns the times of all beats plus the closing bar line, and the bpm of each beat."""
    bpms, prev = [], None
    for section in sections:
        bpm = np.full(section.num_bars * meter, float(section.bpm))
        ramp = min(section.ramp_bars, section.num_bars) * meter
        if ramp and prev is not None:
            bpm[:ramp] = prev + (section.bpm - prev) * np.arange(1, ramp + 1) / (ramp + 1)
        bpms.append(bpm)
        prev = section.bpm
    bpm = np.concatenate(bpms)
    times = lead_in_s + np.concatenate([[0.0], np.cumsum(60.0 / bpm)])
    return times, bpm


def _beat_time(times: np.ndarray, beat) -> np.ndarray:
    """Maps fractional beat indices to seconds, linearly within each beat."""
    beat = np.asarray(beat, dtype=np.float64)
    i = np.clip(np.floor(beat).astype(np.int64), 0, len(times) - 2)
    return times[i] + (beat - i) * (times[i + 1] - times[i])


def _triad(key_root: int, degree: int, mode: str) -> tuple[int, int, int]:
    root = 36 + (key_root + degree) % 12
    return (root, root + (4 if _MAJOR_THIRD[mode][degree] else 3), root + 7)


def _changed_tempo(bpm: float, u: float, go_up: bool, config: SynthConfig) -> float | None:
    """A tempo at least 10 % away from `bpm` inside the config's range, or None."""
    up = (bpm * 1.1, min(bpm * 1.35, config.max_bpm))
    down = (max(bpm * 0.7, config.min_bpm), bpm * 0.9)
    options = [r for r in ((up, down) if go_up else (down, up)) if r[0] <= r[1]]
    if not options:
        return None
    lo, hi = options[0]
    return float(lo + u * (hi - lo))


def _split_bar(num_bars: int, phrase_bars: int, split: float) -> int:
    """The first bar of the second section (on a phrase boundary), or 0 if the song is short."""
    for phrase in (phrase_bars, 4):
        first = phrase * max(1, round(split * num_bars / phrase))
        if num_bars - first >= 2:
            return first
    return 0


def _fit_length(sections, meter, lead_in_s, config: SynthConfig, target_s: float):
    """Sets the last section's length so the song ends on the bar line closest to `target_s`.

    Bar counts that keep the song within [min_seconds, max_seconds] win when there are any.
    """
    last = sections[-1]
    most = int(np.ceil(config.max_seconds * max(s.bpm for s in sections) / 60 / meter)) + 2
    trial = sections[:-1] + (dataclasses.replace(last, num_bars=most),)
    times, _ = _beat_grid(trial, meter, lead_in_s)
    ends = times[(last.start_bar + np.arange(1, most + 1)) * meter]
    inside = (ends >= config.min_seconds) & (ends <= config.max_seconds)
    num_bars = int(np.argmin(np.abs(ends - target_s) + np.where(inside, 0.0, 1e9))) + 1
    ramp = min(last.ramp_bars, num_bars - 1)
    return sections[:-1] + (dataclasses.replace(last, num_bars=num_bars, ramp_bars=ramp),)


def plan_song(
    seed: int, config: SynthConfig = SynthConfig(), song_id: str | None = None
) -> SongPlan:
    """Draws the structure of one song.

    Args:
      seed: non-negative integer; the same seed and config give the same plan.
      config: length, tempo range and change rate.
      song_id: name stored in the plan; defaults to `synth-<seed>`.

    Returns:
      A `SongPlan`.
    """
    rng = np.random.default_rng(seed)
    # All draws happen unconditionally so that one decision never shifts the others.
    style = STYLES[rng.integers(len(STYLES))]
    meter = _STYLES[style].meter
    bpm = float(rng.uniform(config.min_bpm, config.max_bpm))
    has_lead_in, lead_in_s = rng.random() < 0.7, float(rng.uniform(0.05, 0.5))
    target_s = float(rng.uniform(config.min_seconds, config.max_seconds))
    phrase_bars = (4, 8)[rng.integers(2)]
    mode = ("major", "minor")[rng.integers(2)]
    key_root = int(rng.integers(12))
    first, second = rng.choice(len(_PROGRESSIONS[mode]), size=2, replace=False)
    eight_bars = rng.random() < 0.4
    levels_db = tuple(float(x) for x in rng.uniform(-2.0, 2.0, size=3))
    # A golden-ratio sequence instead of a coin: any run of consecutive seeds (a dataset build)
    # holds close to `change_probability` changes.
    wants_change = (seed * _GOLDEN + 0.5) % 1.0 < config.change_probability
    tempo_change = rng.random() < 0.5
    split, ramp_bars = float(rng.uniform(0.35, 0.65)), int(rng.integers(3))
    tempo_u, go_up = float(rng.random()), rng.random() < 0.5
    others = [s for s in STYLES if _STYLES[s].meter == meter and s != style]
    other_style = others[rng.integers(len(others))] if others else style

    lead_in_s = lead_in_s if has_lead_in else 0.0
    degrees = _PROGRESSIONS[mode][first] + (_PROGRESSIONS[mode][second] if eight_bars else ())
    guess = max(1, round((target_s - lead_in_s) * bpm / 60 / meter))
    sections, change = (Section(0, guess, bpm, style),), None
    start = _split_bar(guess, phrase_bars, split) if wants_change else 0
    if start:
        new_bpm = _changed_tempo(bpm, tempo_u, go_up, config) if tempo_change else None
        if new_bpm is not None:
            change, after = "tempo", Section(start, 1, new_bpm, style, ramp_bars)
        elif others:
            change, after = "groove", Section(start, 1, bpm, other_style)
        if change:
            sections = (Section(0, start, bpm, style), after)
    return SongPlan(
        song_id=f"synth-{seed}" if song_id is None else song_id,
        seed=int(seed),
        meter=meter,
        sections=_fit_length(sections, meter, lead_in_s, config, target_s),
        change=change,
        key_root=key_root,
        mode=mode,
        chords=tuple(_triad(key_root, d, mode) for d in degrees),
        phrase_bars=phrase_bars,
        lead_in_s=lead_in_s,
        levels_db=levels_db,
    )


# ---------------------------------------------------------------------------------------------
# Parts: lists of events in beats, from the start of the song.


def _bars(plan: SongPlan):
    """Yields (first beat, index in its section, section, style, chord, whether more follows)."""
    for n, section in enumerate(plan.sections):
        for i in range(section.num_bars):
            bar = section.start_bar + i
            chord = plan.chords[bar % len(plan.chords)]
            more = n + 1 < len(plan.sections)
            yield bar * plan.meter, i, section, _STYLES[section.style], chord, more


def _spans(onsets: list[int], steps: int) -> list[tuple[int, int]]:
    """Pairs each onset step with the next onset (or the bar end)."""
    return list(zip(onsets, onsets[1:] + [steps], strict=False))


def _hits(pattern: str) -> list[tuple[int, int]]:
    return _spans([k for k, c in enumerate(pattern) if c != "."], len(pattern))


def _fill(rng, steps_per_beat: int, meter: int, phrase_bars: int):
    """A snare/tom fill at the end of a bar: (instrument, beat in bar, velocity) triples."""
    beats = min(meter, meter if phrase_bars == 8 and rng.random() < 0.3 else rng.integers(1, 3))
    sub = steps_per_beat if steps_per_beat == 3 or rng.random() < 0.7 else 2
    n = int(beats * sub)
    kind = rng.integers(3)
    if kind == 0:
        voices = [0] * n
    elif kind == 1:
        voices = [min(3, 4 * i // n) for i in range(n)]
    else:
        voices = sorted(rng.integers(4, size=n))
    keep = rng.random(n) > 0.15
    keep[0] = True
    start = meter - beats
    notes = [
        (_TOMS[v], start + i / sub, 0.6 + 0.4 * i / max(1, n - 1))
        for i, v in enumerate(voices)
        if keep[i]
    ]
    return notes + [("kick", float(b), 0.8) for b in range(start, meter)]


def _drum_events(plan: SongPlan, rng):
    """(instrument, beat, velocity) of the whole song, with fills and crashes."""
    events, ride = [], False
    for first, i, section, style, _, more in _bars(plan):
        if i == 0:  # some sections keep time on the ride instead of the hi-hat
            ride = rng.random() < 0.25
        spb = style.steps_per_beat
        is_fill = i % plan.phrase_bars == plan.phrase_bars - 1
        is_fill = is_fill or (more and i == section.num_bars - 1)
        crash = i % plan.phrase_bars == 0
        fill = _fill(rng, spb, plan.meter, plan.phrase_bars) if is_fill else []
        fill_start = min((b for _, b, _ in fill), default=plan.meter)
        for name, pattern in style.drums.items():
            voice = "ride" if ride and name == "hat" and "ride" not in style.drums else name
            for step, char in enumerate(pattern):
                beat = step / spb
                if char == "." or beat >= fill_start or (crash and step == 0 and name != "snare"):
                    continue
                velocity = _VELOCITY[char]
                if voice in ("hat", "ride") and step % spb:
                    velocity *= 0.7  # accents on the beat
                events.append((voice, first + beat, velocity))
        if crash:
            events += [("crash", float(first), 1.0), ("kick", float(first), 1.0)]
        events += [(name, first + b, v) for name, b, v in fill]
    return events


def _bass_notes(plan: SongPlan, rng):
    """(start beat, end beat, MIDI, velocity) of the bass line."""
    notes = []
    for first, _, _, style, chord, _ in _bars(plan):
        spb = style.steps_per_beat
        for k, end in _hits(style.bass):
            char = style.bass[k]
            pitch = {"T": chord[1], "F": chord[2]}.get(char, chord[0] + _BASS_INTERVAL.get(char, 0))
            velocity = (1.0 if k % spb == 0 else 0.65) * np.exp(rng.normal(0, 0.08))
            start = first + k / spb
            notes.append((start, start + 0.9 * (end - k) / spb, pitch, velocity))
    return notes


def _chord_notes(plan: SongPlan, rng):
    """(start beat, end beat, MIDI, velocity, pad) of the chord part, voiced in G3..F#4."""
    notes = []
    for first, _, _, style, chord, _ in _bars(plan):
        spb, hits = style.steps_per_beat, _hits(style.comp)
        for k, end in hits:
            start, pad = first + k / spb, len(hits) == 1
            end_beat = start + (end - k) / spb * (1.0 if pad else 0.7)
            velocity = (1.0 if k % spb == 0 else 0.75) * np.exp(rng.normal(0, 0.08))
            notes += [(start, end_beat, 55 + (p - 55) % 12, velocity, pad) for p in chord]
    return notes


def _lead_notes(plan: SongPlan, rng):
    """(start beat, end beat, MIDI, velocity, waveform): arpeggio or melody on chord tones."""
    notes, arpeggio, index = [], False, 0
    shape = ("square", "tri", "saw")[rng.integers(3)]
    for first, i, _, style, chord, _ in _bars(plan):
        if i == 0:
            arpeggio = rng.random() < 0.4
        spb = style.steps_per_beat
        pool = [p for p in range(67, 87) if any((p - c) % 12 == 0 for c in chord)]
        # Eighth notes (swung on a triplet grid): steps 0 and 2 of each beat.
        steps = [b * spb + o for b in range(plan.meter) for o in (0, 2)]
        odds = (0.9, 0.8) if arpeggio else (0.75, 0.3)  # (on the beat, off the beat)
        onsets = [k for k in steps if rng.random() < odds[k % spb != 0]]
        moves = rng.integers(-2, 3, size=len(onsets))
        for (k, end), move in zip(_spans(onsets, plan.meter * spb), moves, strict=True):
            if arpeggio:
                index = (index + 1) % len(pool)
            else:
                index = int(np.clip(index + move, 0, len(pool) - 1))
            length = min(end - k, spb) / spb * (0.8 if arpeggio else 0.95)
            velocity = (0.9 if k % spb == 0 else 0.65) * np.exp(rng.normal(0, 0.08))
            notes.append((first + k / spb, first + k / spb + length, pool[index], velocity, shape))
    return notes


# ---------------------------------------------------------------------------------------------
# Rendering.


def _add(out: np.ndarray, x: np.ndarray, start: int) -> None:
    stop = min(len(out), start + len(x))
    if stop > start:
        out[start:stop] += x[: stop - start]


def _onsets(times, beats, rng, sr: int, jitter_s: float) -> np.ndarray:
    """Sample index of each nominal beat position, humanised by a few ms of jitter."""
    jitter = np.clip(rng.normal(0.0, jitter_s, size=len(beats)), -2.5 * jitter_s, 2.5 * jitter_s)
    return np.maximum(0, np.round((_beat_time(times, beats) + jitter) * sr)).astype(np.int64)


def drum_hits(plan: SongPlan) -> list[tuple[str, float, float]]:
    """The planned drum hits: (instrument, nominal time in s, velocity), before humanising."""
    times, _ = _beat_grid(plan.sections, plan.meter, plan.lead_in_s)
    events = _drum_events(plan, np.random.default_rng([plan.seed, 2]))
    seconds = _beat_time(times, [e[1] for e in events])
    return [(e[0], float(t), e[2]) for e, t in zip(events, seconds, strict=True)]


def _render_drums(plan, times, n, sr, instruments=None) -> tuple[np.ndarray, np.ndarray]:
    """The drum part and its notes (`Song.drum_notes`); from the soundfont when `instruments`
    are given. Both renderers play the same hits."""
    rng = np.random.default_rng([plan.seed, 2])
    events = _drum_events(plan, rng)
    names = [e[0] for e in events]
    starts = _onsets(times, [e[1] for e in events], rng, sr, 0.003)
    velocities = np.array([e[2] for e in events]) * np.exp(rng.normal(0, 0.1, size=len(events)))
    played = starts < n
    notes = np.stack(
        [
            starts / sr,
            [soundfont.DRUM_KEYS[name] for name in names],
            soundfont.midi_velocity(np.minimum(velocities, 1.2)),
        ],
        axis=-1,
    ).reshape(-1, 3)[played]
    notes = notes[np.argsort(notes[:, 0], kind="stable")]
    if instruments is not None:  # its open hi-hat is choked by the soundfont's exclusive class
        x = soundfont.play_drums(instruments.kit, names, starts, np.minimum(velocities, 1.2), n, sr)
        return x.astype(np.float64), notes
    kit = sounds.drum_kit(np.random.default_rng([plan.seed, 1]), sr)
    hat_starts = np.sort(starts[[k for k, name in enumerate(names) if name in ("hat", "ohat")]])
    out = np.zeros(n)
    for name, start, velocity in zip(names, starts, velocities, strict=True):
        x = kit[name]
        if name == "ohat":  # the next hat chokes an open hat
            later = hat_starts[np.searchsorted(hat_starts, start, side="right") :]
            if len(later) and later[0] - start < len(x):
                x = x[: later[0] - start] * np.linspace(1.0, 0.0, later[0] - start) ** 4
        _add(out, min(velocity, 1.2) * x, start)
    return sounds.room(out, rng, sr), notes


def _render_notes(notes, voice, times, n, sr, rng) -> np.ndarray:
    out = np.zeros(n)
    starts = _onsets(times, [x[0] for x in notes], rng, sr, 0.004)
    durations = _beat_time(times, [x[1] for x in notes]) - _beat_time(times, [x[0] for x in notes])
    for note, start, duration in zip(notes, starts, durations, strict=True):
        _add(out, note[3] * voice(note, duration, sr, rng), start)
    return out


def _play_notes(notes, part, instruments, times, n, sr, rng) -> np.ndarray:
    """A melodic part from the soundfont, with the NumPy voices' onsets and lengths."""
    starts = _onsets(times, [x[0] for x in notes], rng, sr, 0.004)
    durations = _beat_time(times, [x[1] for x in notes]) - _beat_time(times, [x[0] for x in notes])
    stops = starts + np.round(durations * sr).astype(np.int64)
    program = getattr(instruments, part)
    programs = [instruments.pad if part == "chords" and x[4] else program for x in notes]
    keys, velocities = [x[2] for x in notes], [x[3] for x in notes]
    return soundfont.play_notes(programs, starts, stops, keys, velocities, n, sr).astype(np.float64)


def song_renderer(plan: SongPlan, config: SynthConfig = SynthConfig()) -> str:
    """The renderer of a song, "numpy" or "soundfont"; for "mixed" drawn from the plan's seed."""
    if config.renderer != "mixed":
        return config.renderer
    return ("numpy", "soundfont")[int(np.random.default_rng([plan.seed, 7]).random() < 0.5)]


def song_instruments(
    plan: SongPlan, config: SynthConfig = SynthConfig()
) -> soundfont.Instruments | None:
    """The soundfont kit and programs of a song (drawn from its seed), None if NumPy plays it."""
    if song_renderer(plan, config) != "soundfont":
        return None
    return soundfont.choose(np.random.default_rng([plan.seed, 8]), config.drum_kits)


def render_song(plan: SongPlan, config: SynthConfig = SynthConfig()) -> Song:
    """Renders the stems of a planned song and its beat truth.

    Args:
      plan: from `plan_song` (or edited with `dataclasses.replace`).
      config: its `sample_rate`, `peak`, `renderer` and `soundfont_parts` are used.

    Returns:
      A `Song` whose mix peaks at `config.peak`.
    """
    sr = config.sample_rate
    times, bpm = _beat_grid(plan.sections, plan.meter, plan.lead_in_s)
    n = int(np.ceil(times[-1] * sr))
    gm = song_instruments(plan, config)
    gm_parts = () if gm is None else config.soundfont_parts
    drums, drum_notes = _render_drums(plan, times, n, sr, gm if "drums" in gm_parts else None)
    parts = {"drums": drums}
    parts_notes_voices = (
        ("bass", _bass_notes, sounds.bass_voice),
        ("chords", _chord_notes, sounds.chord_voice),
        ("lead", _lead_notes, sounds.lead_voice),
    )
    for k, (name, notes, voice) in enumerate(parts_notes_voices):
        rng = np.random.default_rng([plan.seed, 3 + k])
        if name in gm_parts:
            parts[name] = _play_notes(notes(plan, rng), name, gm, times, n, sr, rng)
        else:
            parts[name] = _render_notes(notes(plan, rng), voice, times, n, sr, rng)
    fade = np.clip((n - np.arange(n)) / (_FADE_S * sr), 0.0, 1.0)  # no click at the cut
    levels = dict(zip(("bass", "chords", "lead"), plan.levels_db, strict=True))
    stems = {}
    for name, x in parts.items():
        rms = np.sqrt(np.mean(x**2)) + 1e-12
        target = _STEM_RMS[name] * 10 ** (levels.get(name, 0.0) / 20)
        stems[name] = (x * fade * (target / rms)).astype(np.float32)
    for _ in range(2):  # the second pass absorbs float32 rounding of the first
        mix = stems["drums"] + (stems["bass"] + stems["chords"] + stems["lead"])
        gain = np.float32(config.peak / np.abs(mix).max())
        stems = {name: x * gain for name, x in stems.items()}
    positions = np.arange(len(bpm)) % plan.meter + 1
    beats = np.stack([times[:-1], positions.astype(np.float64)], axis=1)
    return Song(plan=plan, stems=stems, beats=beats, bpm=bpm, drum_notes=drum_notes, sample_rate=sr)


def make_song(seed: int, config: SynthConfig = SynthConfig(), song_id: str | None = None) -> Song:
    """Plans and renders one song (`render_song(plan_song(seed, config, song_id), config)`).

    Args:
      seed: non-negative integer; the same seed and config give bitwise-identical songs.
      config: synthesis settings.
      song_id: name stored in the plan.

    Returns:
      A `Song`.
    """
    return render_song(plan_song(seed, config, song_id), config)
