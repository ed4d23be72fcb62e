"""A small fake MUSDB18 / MUSDB18-HQ folder for tests (DATASETS §5), from synthstems songs
(`jdrum.datasets.synth`)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import numpy as np
import soundfile

from jdrum.datasets import synth

# Names with a dot and an apostrophe, and songs that the other datasets also hold
# (exact-key MedleyDB and MixingSecret duplicates, and an alias-table one).
SONGS = {
    "train": (
        "A Classic Education - NightOwl",  # = MedleyDB AClassicEducation_NightOwl
        "Actions - Devil's Words",  # = MixingSecret Actions_DevilsWords
        "M.E.R.C. Music - Knockout",
    ),
    "test": (
        "Al James - Schoolboy Facination",  # = MixingSecret MR0908_AlJames
        "Juliet's Rescue - Heartbeats",
    ),
}
STEMS = ("drums", "bass", "other", "vocals")


def _stems(index: int, seconds: float) -> dict[str, np.ndarray]:
    """Stereo stems of a synthesised song: drums, bass, other (chords), vocals (lead)."""
    config = synth.SynthConfig(min_seconds=seconds, max_seconds=seconds)
    song = synth.make_song(100 + index, config)
    mono = {
        "drums": song.drums,
        "bass": song.stems["bass"],
        "other": song.stems["chords"],
        "vocals": song.stems["lead"],
    }
    return {name: np.stack([x, 0.8 * x], axis=-1) for name, x in mono.items()}


def write_fake_musdb18(root: pathlib.Path, layout: str = "hq", seconds: float = 5.0) -> dict:
    """Writes a fake MUSDB18 under `root`.

    Args:
      root: the folder to fill (the future --manual_dir).
      layout: "hq" (wav folders), "nested" (the same one folder deeper) or "stems" (.stem.mp4,
        needs ffmpeg).
      seconds: length of every song.

    Returns:
      {song name: {"stems": {stem: (n, 2) float array as written}}}.
    """
    base = root / "musdb18hq" if layout == "nested" else root
    expected = {}
    index = 0
    for subset, names in SONGS.items():
        for name in names:
            stems = _stems(index, seconds)
            index += 1
            expected[name] = {"stems": stems}
            mixture = 0.9 * sum(stems.values())  # a released mix is not the stems' sum
            if layout == "stems":
                _write_stem_mp4(base / subset / f"{name}.stem.mp4", mixture, stems)
                continue
            folder = base / subset / name
            folder.mkdir(parents=True)
            for stem, x in stems.items():
                soundfile.write(folder / f"{stem}.wav", x, 44_100, subtype="PCM_16")
            soundfile.write(folder / "mixture.wav", mixture, 44_100, subtype="PCM_16")
            soundfile.write(folder / "accompaniment.wav", mixture, 44_100, subtype="PCM_16")
            (folder / "._drums.wav").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (base / "train" / ".DS_Store").write_bytes(b"\x00")
    return expected


def _write_stem_mp4(path: pathlib.Path, mixture: np.ndarray, stems: dict) -> None:
    """Five stereo AAC streams (mixture, drums, bass, other, vocals) in one mp4, via ffmpeg."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.parent / f"{path.name}.parts"
    scratch.mkdir()
    inputs = []
    for k, x in enumerate([mixture] + [stems[s] for s in STEMS]):
        part = scratch / f"{k}.wav"
        soundfile.write(part, x, 44_100, subtype="PCM_16")
        inputs += ["-i", str(part)]
    maps = [arg for k in range(5) for arg in ("-map", str(k))]
    command = ["ffmpeg", "-v", "error", "-y", *inputs, *maps, "-c:a", "aac", "-b:a", "256k"]
    subprocess.run([*command, "-f", "mp4", str(path)], check=True)
    shutil.rmtree(scratch)
