"""A small fake MedleyDB folder for tests (DATASETS §5): YAMLs in the §2.4 format and stems.

Every stem is a few seconds of NumPy audio, 16-bit PCM: drum-side stems are broadband noise
bursts (so no drum clip is silent), the others tones. Mono and stereo stems are mixed and one
stem is at 48 kHz. The tracks cover the routing policy of the builder: a kit track with
tambourine and list-valued labels (a MUSDB18 song too), one whose YAML is only in `Metadata/`,
a drum-machine-only track, a `has_bleed` track with a dropped stem, a track shorter than a
2**16-sample clip, and two skipped ones (auxiliary percussion only; orchestral bass drum and
cymbal without a kit).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np
import soundfile
import yaml

SAMPLE_RATE = 44_100
LAYOUTS = ("audio", "v1v2", "flat")
NO_KIT = "no drum kit or drum machine"  # the builder's skip reason
SHORT_SECONDS = 1.0  # the short track: less than one 2**16-sample (1.49 s) test clip


@dataclasses.dataclass(frozen=True)
class FakeStem:
    instrument: str | list[str]
    side: str  # where the policy must put it: "drums", "drumless" or "drop"
    channels: int = 1
    sample_rate: int = SAMPLE_RATE
    component: str = ""


@dataclasses.dataclass(frozen=True)
class FakeTrack:
    song_id: str
    version: str  # "V1" or "V2": its folder in the "v1v2" layout
    stems: tuple[FakeStem, ...]
    expect: str = "kept"  # or the reason the builder skips it
    yaml_in_folder: bool = True  # else only in <root>/Metadata/
    has_bleed: bool = False
    short: bool = False  # SHORT_SECONDS long instead of `seconds`


D, L, X = "drums", "drumless", "drop"
TRACKS = (
    # In MUSDB18 too (DATASETS §4.5). Kit + tambourine (aux percussion -> drums), an fx stem
    # (drumless), and list-valued labels routed by any drum label.
    FakeTrack(
        "AClassicEducation_NightOwl",
        "V1",
        (
            FakeStem("electric bass", L, 2, component="bass"),
            FakeStem("drum set", D, 2),
            FakeStem("male singer", L, 1, component="melody"),
            FakeStem("tambourine", D, 1),
            FakeStem("fx/processed sound", L, 2),
            FakeStem(["auxiliary percussion", "fx/processed sound"], D, 1),
            FakeStem(["synthesizer", "vibraphone"], L, 2),
        ),
    ),
    # YAML only in Metadata/; the sampler stem S06 holds sampled drums (an override).
    FakeTrack(
        "Snowmine_Curfews",
        "V1",
        (
            FakeStem("auxiliary percussion", D, 1),
            FakeStem("electric bass", L, 1, component="bass"),
            FakeStem("male singer", L, 2),
            FakeStem("vibraphone", L, 2),
            FakeStem("drum set", D, 2),
            FakeStem("sampler", D, 1),
        ),
        yaml_in_folder=False,
    ),
    # Percussion but no kit: skipped.
    FakeTrack(
        "KarimDouaidy_Hopscotch",
        "V1",
        (FakeStem("auxiliary percussion", D, 2), FakeStem("piano", L, 2, component="melody")),
        expect=NO_KIT,
    ),
    # Drum machine, no kit: kept. S02 and S03 are percussive fx stems (overrides); S04 is at
    # 48 kHz (resampled by the build).
    FakeTrack(
        "TablaBreakbeatScience_MoodyPlucks",
        "V1",
        (
            FakeStem("drum machine", D, 2),
            FakeStem("fx/processed sound", D, 1),
            FakeStem("fx/processed sound", D, 2),
            FakeStem("synthesizer", L, 2, sample_rate=48_000),
            FakeStem("tabla", D, 1),
        ),
    ),
    # Orchestral: bass drum and cymbal, no kit: skipped.
    FakeTrack(
        "MusicDelta_GriegTrolltog",
        "V1",
        (
            FakeStem("violin section", L, 2, component="melody"),
            FakeStem("bass drum", D, 1),
            FakeStem("cymbal", D, 1),
            FakeStem("cello", L, 1, component="bass"),
        ),
        expect=NO_KIT,
    ),
    # has_bleed: kept; the vibraphone S03 carries drum bleed and is dropped (an override).
    FakeTrack(
        "Karachacha_Volamos",
        "V2",
        (
            FakeStem("drum set", D, 2),
            FakeStem("acoustic guitar", L, 1, component="melody"),
            FakeStem("vibraphone", X, 2),
            FakeStem("auxiliary percussion", D, 1),
            FakeStem("kick drum", D, 1),
            FakeStem("double bass", L, 1, component="bass"),
        ),
        has_bleed=True,
    ),
    # Shorter than a clip: kept, but yields no clip.
    FakeTrack(
        "MusicDelta_Rock",
        "V1",
        (
            FakeStem("drum set", D, 2),
            FakeStem("electric bass", L, 1, component="bass"),
            FakeStem("distorted electric guitar", L, 2, component="melody"),
        ),
        short=True,
    ),
)
# Kept but shorter than one test clip, so without clips (like the real MusicDelta_Rock, 13 s, and a
# 2**20-sample clip).
SHORT_IDS = tuple(t.song_id for t in TRACKS if t.short)
# A YAML in Metadata/ whose track is not on disk: never listed (the folder is not globbed).
ABSENT_ID = "MusicDelta_Beatles"


def _stem_audio(stem: FakeStem, seed: int, seconds: float) -> np.ndarray:
    """(n,) or (n, channels) float audio, peak about 0.12 so a track's unity sum stays < 1."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * stem.sample_rate))
    t = np.arange(n) / stem.sample_rate
    if stem.side == "drumless":
        freq = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        x = 0.08 * np.sin(2 * np.pi * freq * t) + 0.03 * np.sin(2 * np.pi * 2.01 * freq * t)
    else:  # broadband bursts over a noise floor: loud in every mel band, never silent
        period = rng.uniform(0.2, 0.4)
        since_onset = (t + rng.uniform(0, period)) % period
        envelope = 0.02 + 0.08 * np.exp(-since_onset / 0.05)
        x = envelope * rng.uniform(-1.0, 1.0, n)
    if stem.channels == 1:
        return x
    return np.stack([x, np.roll(x, 7) * 0.8], axis=-1)


def _metadata(track: FakeTrack) -> dict:
    song = track.song_id
    # Human-readable, not the ID halves (DATASETS §2.4): "AClassicEducation" -> "A Classic ...".
    artist, title = (
        re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", half)
        for half in song.split("_")
    )
    stems = {}
    for k, stem in enumerate(track.stems, start=1):
        label = stem.instrument if isinstance(stem.instrument, str) else stem.instrument[0]
        stems[f"S{k:02d}"] = {
            "component": stem.component,
            "filename": f"{song}_STEM_{k:02d}.wav",
            "instrument": stem.instrument,
            "raw": {"R01": {"filename": f"{song}_RAW_{k:02d}_01.wav", "instrument": label}},
        }
    return {
        "album": "",
        "artist": artist,
        "composer": [artist],
        "excerpt": "no",
        "genre": "Rock",
        "has_bleed": "yes" if track.has_bleed else "no",
        "instrumental": "no",
        "mix_filename": f"{song}_MIX.wav",
        "origin": "Independent Artist",
        "producer": ["Someone"],
        "raw_dir": f"{song}_RAW",
        "stem_dir": f"{song}_STEMS",
        "stems": stems,
        "title": title,
        "version": 1.2,
        "website": [],
    }


def _write_yaml(path: pathlib.Path, metadata: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # safe_dump quotes 'yes', 'no' and '' (they would not read back as strings otherwise).
    path.write_text(yaml.safe_dump(metadata, sort_keys=True, default_flow_style=False))


def track_folder(root: pathlib.Path, song_id: str, layout: str = "audio") -> pathlib.Path:
    """Where `write_fake_medleydb(root, layout)` puts the folder of track `song_id`."""
    track = next(t for t in TRACKS if t.song_id == song_id)
    parent = {"audio": root / "Audio", "v1v2": root / track.version, "flat": root}[layout]
    return parent / song_id


def write_fake_medleydb(root: pathlib.Path, layout: str = "audio", seconds: float = 5.0) -> dict:
    """Writes a fake MedleyDB under `root`.

    Args:
      root: the folder to fill (the future --manual_dir).
      layout: "audio" (`Audio/<ID>/`), "v1v2" (`V1/<ID>/`, `V2/<ID>/`) or "flat" (`<ID>/`).
      seconds: length of every track but the short one (SHORT_SECONDS).

    Returns:
      {ID: {"status": "kept" or the skip reason, "folder": track folder, "seconds": length,
      "drums": [stem file names], "drumless": [...], "dropped": [...]}}; the file lists are
      those the policy must give (they are empty for skipped tracks).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}: {layout!r}")
    root = pathlib.Path(root)
    expected = {}
    for index, track in enumerate(TRACKS):
        song = track.song_id
        folder = track_folder(root, song, layout)
        stem_dir = folder / f"{song}_STEMS"
        stem_dir.mkdir(parents=True)
        length = SHORT_SECONDS if track.short else seconds
        sides = {"drums": [], "drumless": [], "drop": []}
        mix = None
        for k, stem in enumerate(track.stems, start=1):
            name = f"{song}_STEM_{k:02d}.wav"
            x = _stem_audio(stem, 1000 * index + k, length)
            soundfile.write(stem_dir / name, x, stem.sample_rate, subtype="PCM_16")
            sides[stem.side].append(name)
            if stem.sample_rate == SAMPLE_RATE:
                mono = x if x.ndim == 1 else x.mean(axis=-1)
                mix = mono if mix is None else mix + mono
        metadata = _metadata(track)
        yaml_dir = folder if track.yaml_in_folder else root / "Metadata"
        _write_yaml(yaml_dir / f"{song}_METADATA.yaml", metadata)
        # What macOS copies leave behind, and the mix the builder does not read.
        (stem_dir / f"._{song}_STEM_01.wav").write_bytes(b"\x00\x05\x16\x07AppleDouble")
        (yaml_dir / f"._{song}_METADATA.yaml").write_bytes(b"\x00\x05\x16\x07AppleDouble")
        soundfile.write(folder / f"{song}_MIX.wav", 0.9 * mix, SAMPLE_RATE, subtype="PCM_16")
        kept = track.expect == "kept"
        expected[song] = {
            "status": track.expect,
            "folder": folder,
            "seconds": length,
            "drums": sides["drums"] if kept else [],
            "drumless": sides["drumless"] if kept else [],
            "dropped": sides["drop"] if kept else [],
        }
    absent = next(t for t in TRACKS if t.song_id == "AClassicEducation_NightOwl")
    absent_metadata = _metadata(dataclasses.replace(absent, song_id=ABSENT_ID))
    _write_yaml(root / "Metadata" / f"{ABSENT_ID}_METADATA.yaml", absent_metadata)
    for parent in {track_folder(root, t.song_id, layout).parent for t in TRACKS}:
        (parent / ".DS_Store").write_bytes(b"\x00")
    (root / "__MACOSX" / f"._{ABSENT_ID}").mkdir(parents=True)
    return expected
