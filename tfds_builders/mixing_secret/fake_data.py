"""A small fake MixingSecret download for tests (DATASETS §3.4, §5).

`<root>/metadata/<ID>_METADATA.yaml` in the repository's cleaned format (`version: '3.0'`, group
stems `<ID>_STEM_drums.wav` / `_loops` / `_synth` / `_sfx`, the `R010` key, a label list, files
listed by two stems) and `<root>/<ID>_Full/NN_Name.wav` raw files of different lengths, mono and
stereo, 16- and 24-bit, one at 48 kHz. Drum parts are broadband noise bursts over a noise floor,
so no drum clip is silent; pitched parts are harmonic tones. Every raw file states the side the
routing rules must send it to, so the expectation is written by hand, not computed by the
builder's code.

Songs: two MUSDB18 duplicates (`Actions_DevilsWords` exact key, `MR0908_AlJames` by the alias
table), a drum-machine-only song, a multi-part archive, the MedleyDB-style layout, three songs
without drums (no kit, percussion only, non-drum loops only), one song missing on disk, a library
folder without metadata and a `__MACOSX/` folder.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import zlib

import numpy as np
import soundfile
import yaml

NO_DRUMS = "no drum kit or drum loops"
NOT_DOWNLOADED = "audio not downloaded"


@dataclasses.dataclass(frozen=True)
class Raw:
    """One raw file and the side the routing must send it to."""

    name: str
    side: str  # "drums", "drumless" or "dropped"
    hits: bool = False  # noise bursts (drums, rooms, clicks); else a harmonic tone
    channels: int = 1
    subtype: str = "PCM_16"
    rate: int = 44_100
    length: float = 1.0  # fraction of the song length
    gain: float = 1.0


@dataclasses.dataclass(frozen=True)
class Song:
    """A song's YAML stems, raw files and on-disk layout.

    `stems` holds (group, instrument, raw names): group "drums" / "loops" / "synth" / "sfx" names
    the generated stem `<ID>_STEM_<group>.wav`; None a single-file stem named after its raw file.
    `layout`: "full" (`<ID>_Full/`), "parts" (`<ID>_Full_1/`, `<ID>_Full_2/`), "medleydb"
    (`<ID>/<ID>_RAW/` beside generated `<ID>_STEMS/`) or "absent" (metadata only).
    """

    song_id: str
    layout: str
    stems: tuple
    raws: tuple[Raw, ...]
    skip: str | None = None


def _kit(*names: str, **options) -> tuple[Raw, ...]:
    return tuple(Raw(name, "drums", hits=True, **options) for name in names)


_ACTIONS_KIT = tuple(
    f"{k:02d}_{name}.wav"
    for k, name in enumerate(
        ("KickIn", "KickOut", "SnareUp", "SnareDown", "HiHat")
        + ("Tom1", "Tom2", "Overheads", "Ride", "DrumsFX"),
        start=1,
    )
)
SONGS = (
    Song(  # MUSDB18 "Actions - Devil's Words" (exact key); R010, a label list, 3a/3c/3d, click
        "Actions_DevilsWords",
        "full",
        stems=(
            ("drums", "drum set", _ACTIONS_KIT),  # R01 ... R09, R010
            ("sfx", "fx/processed sound", ("10_DrumsFX.wav", "11_SFXRiser.wav")),
            (None, "main system", ("12_Room.wav",)),
            (None, "tambourine", ("13_Tambourine.wav",)),
            (None, "electric bass", ("14_Bass.wav",)),
            (None, ["acoustic guitar", "male singer"], ("15_AcGtrVox.wav",)),
            (None, "click", ("16_Click.wav",)),
            (None, "glockenspiel", ("17_Glockenspiel.wav",)),
        ),
        raws=(
            # Loud: the unity sum of the raw files exceeds full scale, as real ones can.
            *_kit("01_KickIn.wav", "03_SnareUp.wav", subtype="PCM_24", gain=4.0),
            *_kit("02_KickOut.wav", length=0.97, gain=4.0),
            *_kit("04_SnareDown.wav", "05_HiHat.wav", "09_Ride.wav", length=0.93, gain=4.0),
            *_kit("06_Tom1.wav", "07_Tom2.wav", length=0.9, subtype="PCM_24", gain=4.0),
            *_kit("08_Overheads.wav", "12_Room.wav", channels=2, subtype="PCM_24", gain=4.0),
            *_kit("10_DrumsFX.wav", "13_Tambourine.wav", length=0.85, gain=4.0),
            Raw("11_SFXRiser.wav", "drumless", channels=2, length=0.8),
            Raw("14_Bass.wav", "drumless", subtype="PCM_24"),
            Raw("15_AcGtrVox.wav", "drumless", channels=2, length=0.95),
            Raw("16_Click.wav", "dropped", hits=True),
            Raw("17_Glockenspiel.wav", "drumless", length=0.7),
        ),
    ),
    Song(  # MUSDB18 "Al James - Schoolboy Facination" (alias); shared loop, 48 kHz, break, tub
        "MR0908_AlJames",
        "full",
        stems=(
            ("drums", "drum set", ("01_Kick.wav", "02_Snare.wav", "03_Overheads.wav")),
            ("loops", "drum machine", ("04_Loop1.wav", "05_SynthLoop.wav")),
            ("synth", "synthesizer", ("05_SynthLoop.wav", "06_SynthPad.wav")),
            (None, "electric bass", ("07_Bass.wav",)),
            (None, "male singer", ("08_LeadVox.wav",)),
            (None, "break", ("09_Break.wav",)),
            (None, "tub", ("10_Tuba.wav",)),
            (None, "bells", ("11_Bells.wav",)),
        ),
        raws=(
            *_kit("01_Kick.wav", "02_Snare.wav", "04_Loop1.wav"),
            *_kit("03_Overheads.wav", channels=2),
            *_kit("09_Break.wav", length=0.6),
            Raw("05_SynthLoop.wav", "drumless", channels=2, subtype="PCM_24"),
            Raw("06_SynthPad.wav", "drumless", channels=2, subtype="PCM_24", rate=48_000),
            Raw("07_Bass.wav", "drumless", length=0.9),
            Raw("08_LeadVox.wav", "drumless", length=0.8),
            Raw("10_Tuba.wav", "drumless", length=0.75),
            Raw("11_Bells.wav", "drumless", channels=2, length=0.7),
        ),
    ),
    Song(  # drum machine only: the loop is the drum side; no kit, so the room is drumless (3d)
        "CarolDant_DoNotStand",
        "full",
        stems=(
            ("loops", "drum machine", ("01_Loop.wav",)),
            (None, "electric bass", ("02_Bass.wav",)),
            (None, "female speaker", ("07_LeadVox.wav",)),
            (None, "main system", ("08_Room.wav",)),
        ),
        raws=(
            *_kit("01_Loop.wav", channels=2),
            Raw("02_Bass.wav", "drumless", subtype="PCM_24", length=0.95),
            Raw("07_LeadVox.wav", "drumless", length=0.9),
            Raw("08_Room.wav", "drumless", hits=True, channels=2),
        ),
    ),
    Song(  # a two-part archive: files split over <ID>_Full_1/ and <ID>_Full_2/
        "JPLantieri_Riesling",
        "parts",
        stems=(
            ("drums", "drum set", ("01_Kick.wav", "02_Snare.wav")),
            (None, "fill", ("03_Fill.wav",)),
            (None, "piano", ("04_Piano.wav",)),
            ("loops", "drum machine", ("05_ShakerLoop.wav",)),
        ),
        raws=(
            *_kit("01_Kick.wav", "02_Snare.wav"),
            *_kit("03_Fill.wav", length=0.5),
            *_kit("05_ShakerLoop.wav", length=0.9, subtype="PCM_24"),
            Raw("04_Piano.wav", "drumless", channels=2),
        ),
    ),
    Song(  # the authors' MedleyDB-style layout: <ID>/<ID>_RAW/ (the _STEMS/ copies are decoys)
        "Fin_Echoes",
        "medleydb",
        stems=(
            ("drums", "drum set", ("01_Kick.wav", "02_Snare.wav")),
            (None, "electric bass", ("03_Bass.wav",)),
            (None, "congas", ("04_Congas.wav",)),
            (None, "whistle", ("05_Whistle.wav",)),
        ),
        raws=(
            *_kit("01_Kick.wav", "02_Snare.wav", "04_Congas.wav"),
            Raw("03_Bass.wav", "drumless", length=0.9),
            Raw("05_Whistle.wav", "drumless", length=0.6),
        ),
    ),
    Song(  # no kit: the `_STEM_drums.wav` is an ORTF pair labelled main system (DATASETS §3.6)
        "AsamClassicalSoloists_JesuJoy",
        "full",
        stems=(
            ("drums", "main system", ("01_ORTF.wav",)),
            (None, ["cello", "flute", "oboe", "violin"], ("02_Ensemble.wav",)),
        ),
        raws=(
            Raw("01_ORTF.wav", "drumless", channels=2),
            Raw("02_Ensemble.wav", "drumless"),
        ),
        skip=NO_DRUMS,
    ),
    Song(  # percussion only (class P)
        "AnnaBlanton_Rachel",
        "full",
        stems=((None, "congas", ("01_Congas.wav",)), (None, "female singer", ("02_Vox.wav",))),
        raws=(*_kit("01_Congas.wav"), Raw("02_Vox.wav", "drumless")),
        skip=NO_DRUMS,
    ),
    Song(  # drum machine stems whose loops are all pitched (rule 3b keeps none)
        "Nobody_LoopsWithoutDrums",
        "full",
        stems=(
            ("loops", "drum machine", ("01_SynthLoop.wav", "02_ElecGtrLoop.wav")),
            ("synth", "synthesizer", ("01_SynthLoop.wav",)),
            (None, "male singer", ("03_Vox.wav",)),
        ),
        raws=(
            Raw("01_SynthLoop.wav", "drumless"),
            Raw("02_ElecGtrLoop.wav", "drumless"),
            Raw("03_Vox.wav", "drumless"),
        ),
        skip=NO_DRUMS,
    ),
    Song(  # withdrawn from the library in 2021: metadata only
        "Giselle_You",
        "absent",
        stems=(("drums", "drum set", ("01_Kick.wav",)), (None, "female singer", ("02_Vox.wav",))),
        raws=(*_kit("01_Kick.wav"), Raw("02_Vox.wav", "drumless")),
        skip=NOT_DOWNLOADED,
    ),
)


def _raw_key(index: int) -> str:
    """The generator's keys: R01 ... R09, R010, R11, ... (DATASETS §3.4)."""
    return "R010" if index == 10 else f"R{index:02d}"


def _word(name: str) -> str:
    """`03_SnareUp.wav` -> `SnareUp`: the raw-level label cut from the file name."""
    return re.sub(r"^\d+_|\d*\.wav$", "", name)


def metadata(song: Song) -> dict:
    """The song's `<ID>_METADATA.yaml` content, in the repository's key order and values."""
    artist, title = song.song_id.split("_", 1)
    stems = {}
    for k, (group, instrument, names) in enumerate(song.stems, start=1):
        single = group is None and isinstance(instrument, str)
        stems[f"S{k:02d}"] = {
            "component": "",
            "filename": f"{song.song_id}_STEM_{group}.wav" if group else names[0],
            "instrument": instrument,
            "raw": {
                _raw_key(j): {"filename": name, "instrument": instrument if single else _word(name)}
                for j, name in enumerate(names, start=1)
            },
        }
    return {
        "album": "",
        "artist": artist,
        "composer": "",
        "excerpt": "no",
        "genre": "",
        "has_bleed": "no",
        "instrumental": "no",
        "mix_filename": f"{song.song_id}_MIX.wav",
        "origin": "Mixing Secrets",
        "producer": "",
        "raw_dir": f"{song.song_id}_RAW",
        "stem_dir": f"{song.song_id}_STEMS",
        "stems": stems,
        "title": title,
        "version": "3.0",
        "website": "",
    }


def _audio(key: str, raw: Raw, seconds: float) -> np.ndarray:
    """(n, channels) float audio: noise bursts over a noise floor, or a harmonic tone."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    n = int(round(seconds * raw.length * raw.rate))
    t = np.arange(n) / raw.rate
    channels = []
    if raw.hits:
        period = rng.uniform(0.18, 0.35)
        envelope = 0.03 * np.exp(-((t - rng.uniform(0, period)) % period) / 0.04) + 0.005
        channels = [envelope * rng.standard_normal(n) for _ in range(raw.channels)]
    else:
        f0 = rng.uniform(80.0, 440.0)
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
        tone = 0.02 * tone * (0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t))
        channels = [tone * (0.8**c) for c in range(raw.channels)]
    return raw.gain * np.stack(channels, axis=-1)


def _folder(root: pathlib.Path, song: Song, index: int) -> pathlib.Path:
    if song.layout == "parts":
        return root / f"{song.song_id}_Full_{index % 2 + 1}"
    if song.layout == "medleydb":
        return root / song.song_id / f"{song.song_id}_RAW"
    return root / f"{song.song_id}_Full"


def write_fake_mixing_secret(root: pathlib.Path, seconds: float = 5.0) -> dict:
    """Writes a fake MixingSecret download under `root` (the future --manual_dir).

    Args:
      root: the folder to fill (created if needed).
      seconds: length of the longest raw file of each song.

    Returns:
      {ID: expectation}: for a kept song {"drums", "drumless", "dropped"} -> sorted raw file
      names; for a skipped one {"skip": the reason `list_tracks` records}.
    """
    root = pathlib.Path(root)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    expected = {}
    for song in SONGS:
        text = yaml.safe_dump(metadata(song), sort_keys=False, default_flow_style=False)
        (root / "metadata" / f"{song.song_id}_METADATA.yaml").write_text(text)
        if song.skip is None:
            expected[song.song_id] = {
                side: tuple(sorted(r.name for r in song.raws if r.side == side))
                for side in ("drums", "drumless", "dropped")
            }
        else:
            expected[song.song_id] = {"skip": song.skip}
        if song.layout == "absent":
            continue
        for index, raw in enumerate(song.raws):
            folder = _folder(root, song, index)
            folder.mkdir(parents=True, exist_ok=True)
            x = _audio(f"{song.song_id}/{raw.name}", raw, seconds)
            soundfile.write(folder / raw.name, x, raw.rate, subtype=raw.subtype)
        if song.layout == "medleydb":
            # The authors' script also leaves the YAML and averaged group stems in <ID>/; a
            # single-file stem there has the raw file's name but other content.
            (root / song.song_id / f"{song.song_id}_METADATA.yaml").write_text(text)
            stems = root / song.song_id / f"{song.song_id}_STEMS"
            stems.mkdir()
            decoy = _audio("decoy", Raw("decoy", "drumless"), seconds)
            for name in (f"{song.song_id}_STEM_drums.wav", "03_Bass.wav"):
                soundfile.write(stems / name, decoy, 44_100, subtype="PCM_16")
    # macOS leftovers next to a song and in a __MACOSX/ tree.
    (root / "CarolDant_DoNotStand_Full" / "._01_Loop.wav").write_bytes(b"\x00\x05\x16\x07")
    macosx = root / "__MACOSX" / "CarolDant_DoNotStand_Full"
    macosx.mkdir(parents=True)
    (macosx / "._01_Loop.wav").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / "metadata" / "._Fin_Echoes_METADATA.yaml").write_bytes(b"\x00\x05\x16\x07")
    # A library song that is not one of the 258 (no metadata): ignored.
    extra = root / "MR1110_YoungGriffo_Full"
    extra.mkdir()
    soundfile.write(extra / "01_Kick.wav", np.zeros(4410), 44_100, subtype="PCM_16")
    return expected
