"""A small fake MoisesDB folder for tests, in the released layout.

`moisesdb/moisesdb_v0.1/<uuid>/data.json` with the fields the authors' `moisesdb` package reads
(`artist`, `song`, `genre`, `stems[].stemName`, `stems[].tracks[].{id, extension, trackType,
has_bleed}`; stem names and track types from its taxonomy, `moisesdb/defaults.py`), and the
sources as `<uuid>/<stemName>/<id>.wav`: stereo, 44.1 kHz, 24-bit, one at 48 kHz and one
16-bit mono. Drum-side sources are noise bursts, the others tones.

The songs: a band with kit pieces, unpitched and pitched percussion and a click track; a full
kit with a bleeding source and other keys; a drum-machine-only song (kept); and a song with
percussion but no drums stem (skipped).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import uuid as uuid_lib

import numpy as np
import soundfile

SAMPLE_RATE = 44_100
SECONDS = 4.0
PROVIDER = "moisesdb_v0.1"
LAYOUTS = ("release", "provider", "flat")  # moisesdb/moisesdb_v0.1/, moisesdb_v0.1/, <uuid>/
NO_DRUMS = "no drums stem"  # the builder's skip reason
ATONAL = "a-tonal percussion (claps, shakers, congas, cowbell etc)"
PITCHED = "pitched percussion (mallets, glockenspiel, ...)"


@dataclasses.dataclass(frozen=True)
class FakeSource:
    stem: str  # stemName
    track_type: str
    side: str  # where the policy must put it: "drums", "drumless" or "drop"
    channels: int = 2
    sample_rate: int = SAMPLE_RATE
    subtype: str = "PCM_24"
    has_bleed: bool = False


@dataclasses.dataclass(frozen=True)
class FakeSong:
    artist: str
    song: str
    genre: str
    sources: tuple[FakeSource, ...]
    expect: str = "kept"  # or the reason the builder skips it

    @property
    def song_id(self) -> str:
        return str(uuid_lib.uuid5(uuid_lib.NAMESPACE_URL, f"{self.artist}/{self.song}"))


D, L, X = "drums", "drumless", "drop"
SONGS = (
    FakeSong(
        "Fake Band",
        "Test Song",
        "rock",
        (
            FakeSource("vocals", "lead female singer", L),
            FakeSource("drums", "kick drum", D, channels=1, subtype="PCM_16"),
            FakeSource("drums", "snare drum", D),
            FakeSource("drums", "overheads", D, sample_rate=48_000),
            FakeSource("bass", "bass guitar", L),
            FakeSource("percussion", ATONAL, D),
            FakeSource("percussion", PITCHED, L),
            FakeSource("other", "click track", X),
            FakeSource("guitar", "distorted electric guitar", L),
        ),
    ),
    FakeSong(
        "Another Artist",
        "Second Song",
        "pop",
        (
            FakeSource("drums", "full acoustic drumkit", D, has_bleed=True),
            FakeSource("piano", "grand piano", L),
            FakeSource("other_keys", "synth pad", L),
            FakeSource("vocals", "other (vocoder, beatboxing etc)", L),
        ),
    ),
    FakeSong(
        "Beat Maker",
        "Machine",
        "electronic",
        (
            FakeSource("drums", "drum machine", D),
            FakeSource("bass", "bass synthesizer (moog etc)", L),
        ),
    ),
    FakeSong(
        "Folk Trio",
        "No Kit",
        "folk",
        (
            FakeSource("percussion", ATONAL, D),
            FakeSource("bowed_strings", "violin (solo)", L),
            FakeSource("other_plucked", "banjo, mandolin, ukulele, harp etc", L),
        ),
        expect=NO_DRUMS,
    ),
)
KEPT = tuple(s.song_id for s in SONGS if s.expect == "kept")


def _source_audio(source: FakeSource, seed: int, seconds: float) -> np.ndarray:
    """(n,) or (n, channels) audio, peak about 0.1 so a song's unity sum stays below 1."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * source.sample_rate))
    t = np.arange(n) / source.sample_rate
    if source.side == "drums":
        since_onset = (t + rng.uniform(0, 0.3)) % 0.3
        x = (0.01 + 0.06 * np.exp(-since_onset / 0.04)) * rng.uniform(-1.0, 1.0, n)
    else:
        x = 0.06 * np.sin(2 * np.pi * 110.0 * 2 ** (rng.integers(0, 24) / 12) * t)
    if source.channels == 1:
        return x
    return np.stack([x, 0.7 * np.roll(x, 5)], axis=-1)


def song_folder(root: pathlib.Path, song: FakeSong, layout: str = "release") -> pathlib.Path:
    """Where `write_fake_moisesdb(root, layout)` puts `song`."""
    base = {"release": root / "moisesdb" / PROVIDER, "provider": root / PROVIDER, "flat": root}
    return base[layout] / song.song_id


def write_fake_moisesdb(
    root: pathlib.Path, layout: str = "release", seconds: float = SECONDS
) -> dict:
    """Writes a fake MoisesDB under `root`.

    Args:
      root: the folder to fill (the future --manual_dir).
      layout: "release" (`moisesdb/moisesdb_v0.1/<uuid>/`, the unpacked archive), "provider"
        (`moisesdb_v0.1/<uuid>/`) or "flat" (`<uuid>/`).
      seconds: length of every source.

    Returns:
      {song ID: {"status": "kept" or the skip reason, "folder": its folder, "data": data.json's
      content, "drums": [source files], "drumless": [...], "drop": [...]}} (the files the
      policy must give, empty for skipped songs).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}: {layout!r}")
    root = pathlib.Path(root)
    expected = {}
    for index, song in enumerate(SONGS):
        folder = song_folder(root, song, layout)
        stems: dict[str, list] = {}
        sides = {"drums": [], "drumless": [], "drop": []}
        for k, source in enumerate(song.sources):
            source_id = str(uuid_lib.uuid5(uuid_lib.NAMESPACE_URL, f"{song.song_id}/{k}"))
            path = folder / source.stem / f"{source_id}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            x = _source_audio(source, 100 * index + k, seconds)
            soundfile.write(path, x, source.sample_rate, subtype=source.subtype)
            sides[source.side].append(str(path))
            stems.setdefault(source.stem, []).append(
                {
                    "id": source_id,
                    "trackType": source.track_type,
                    "extension": "wav",
                    "has_bleed": source.has_bleed,
                }
            )
        data = {
            "artist": song.artist,
            "song": song.song,
            "genre": song.genre,
            "stems": [{"stemName": name, "tracks": tracks} for name, tracks in stems.items()],
        }
        (folder / "data.json").write_text(json.dumps(data, indent=2))
        (folder / "._data.json").write_bytes(b"\x00\x05\x16\x07AppleDouble")
        kept = song.expect == "kept"
        expected[song.song_id] = {
            "status": song.expect,
            "folder": folder,
            "data": data,
            **{side: (files if kept else []) for side, files in sides.items()},
        }
    (folder.parent / ".DS_Store").write_bytes(b"\x00")
    return expected
