"""What the real multitrack builders share: tracks, drum routing results, checks, song keys.

A dataset builder (MUSDB18, MedleyDB, MixingSecret, Slakh2100, MoisesDB, the merged
JukeDrummer corpus) only has to list its tracks: `MultitrackBuilder.list_tracks(root)` returns a
`Listing` of `Track`s, each naming the audio files summed into its drum stem and into its
drumless stem, plus the tracks it skipped and why. The base class checks every file before
anything is written (a missing or unreadable file ends the build with a one-line `DatasetError`
naming it), splits by recording (a stable hash of a canonical key shared by cross-dataset
duplicates, so both copies of a song always fall in the same split; a listing may instead give a
track its dataset's own split, `Track.assigned_split`), sums the stems and cuts clips with
`jdrum.datasets.records.song_clips`, passing on what a track knows of its beats and drum notes
(`Track.true_beats`, `Track.drum_notes`; `MultitrackConfig.drum_notes` gives every record of a
dataset a `drum_notes` field). Skipped tracks are logged as one warning per reason and stored in
the dataset's metadata, so a dataset built from an incomplete folder never looks complete.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence

import numpy as np
import soundfile
import tensorflow_datasets as tfds
from absl import logging

from jdrum import audio, parallel
from jdrum.datasets import records


class DatasetError(ValueError):
    """A dataset folder that cannot be built; the message is one line naming the file."""


# MixingSecret IDs whose MUSDB18 name does not reduce to the same key (DATASETS §4.4, §4.6):
# Mix Rescue IDs name the artist only, and four names differ in words.
MUSDB_ALIASES = {
    "MR0908_AlJames": "Al James - Schoolboy Facination",
    "MR1111_Arise": "Arise - Run Run Run",
    "MR1212_BillChudziak": "Bill Chudziak - Children Of No-one",
    "MR1004_BlackBloc": "Black Bloc - If You Want Success",
    "MR0911_BobbyNobody": "Bobby Nobody - Stitch Up",
    "MR0905_ChrisDurban": "Chris Durban - Celebrate",
    "MR1103_Flags": "Flags - 54",
    "MR1011_GirlsUnderGlass": "Girls Under Glass - We Feel Alright",
    "MR0902_JamesElder": "James Elder & Mark M Thompson - The English Actor",
    "MR1210_JamesMay": "James May - On The Line",
    "MR1001_JayMenon": "Jay Menon - Through My Eyes",
    "MR1101_JohnnyLokke": "Johnny Lokke - Promises & Lies",
    "MR1204_JokersJacksKings": "Jokers Jacks & Kings - Sea Of Leaves",
    "MR0702_Leaf": "Leaf - Come Around",
    "MR0903_Moosmusic": "Moosmusic - Big Dummy Shake",
    "MR0912_NorthToAlaska": "North To Alaska - All The Same",
    "PatrickTalbot_SetMeFree": "Patrick Talbot - Set Free Me",
    "MR1008_PhreTheEon": "Phre The Eon - Everybody's Falling Apart",
    "MR0907_Punkdisco": "Punkdisco - Oral Hygiene",
    "MR1202_SambasevamShanmugam": "Sambasevam Shanmugam - Kaathaadi",
    "MR1002_SideEffectsProject": "Side Effects Project - Sing With Me",
    "MR1107_SigneJakobsen": "Signe Jakobsen - What Have You Done To Me",
    "MR0811_StVitus": "St Vitus - Word Gets Around",
    "DopplerShift_Atrophy": "The Doppler Shift - Atrophy",
    "MR1205_MountaineeringClub": "The Mountaineering Club - Mallory",
    "MR1303_WrongUns": "The Wrong'Uns - Rothko",
    "MR1304_TomMcKenzie": "Tom McKenzie - Directions",
    "TrafficExperiment_OnceMore": "Traffic Experiment - Once More (With Feeling)",
    "Triviul_Widow": "Triviul feat. The Fiend - Widow",
    "MR1105_WeFellFromTheSky": "We Fell From The Sky - Not You",
    "MR1003_Zeno": "Zeno - Signs",
}
# Songs that share source material and must share a split (DATASETS §3.8: a remix family).
_SPLIT_GROUPS = {"jplantierichardonnay": re.compile(r"^jplantierichardonnay")}


def song_key(name: str) -> str:
    """Lower case with everything outside [a-z0-9] removed (DATASETS §4.4).

    `song_key("Clara Berry And Wooldog - Waltz For My Victims")` equals
    `song_key("ClaraBerryAndWooldog_WaltzForMyVictims")`.
    """
    return re.sub(r"[^a-z0-9]", "", name.lower())


def canonical_key(song_id: str) -> str:
    """The key one recording has in every dataset: duplicates across datasets share it."""
    return song_key(MUSDB_ALIASES.get(song_id, song_id))


def split_key(song_id: str) -> str:
    """What the split is hashed from: the canonical key, or the key of the song's family."""
    key = canonical_key(song_id)
    for group, pattern in _SPLIT_GROUPS.items():
        if pattern.match(key):
            return group
    return key


def is_hidden(name: str) -> bool:
    """Dotfiles, AppleDouble `._*` files and `__MACOSX` folders, which builders skip."""
    return name.startswith(".") or name == "__MACOSX"


@dataclasses.dataclass(frozen=True)
class Track:
    """One recording: the files summed into its drum stem and into its drumless stem."""

    song_id: str  # the dataset's own ID (MUSDB name, MedleyDB / MixingSecret ID)
    source: str  # the dataset name
    drums: tuple[str, ...]
    drumless: tuple[str, ...]
    # The dataset's rule: skip (and count) the track if its files' lengths differ by more than
    # this; None: files legitimately differ (raw tracks) and are zero-padded to the longest.
    max_length_mismatch_s: float | None = 1.0
    # The split the dataset itself gives this recording (MUSDB18's official test folder);
    # None: the recording-level hash `hashed_split`. A union of datasets clears it.
    assigned_split: str | None = None
    # What the dataset knows of the recording (Slakh2100's MIDI), passed to
    # `records.song_clips`; None: unknown. (k, 2) beats (time in s, position in bar, 1 = downbeat),
    # (k,) tempo in BPM at each beat, (j, 3) drum notes (onset s, General MIDI key, velocity).
    true_beats: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)
    tempo: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)
    drum_notes: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.assigned_split not in (None, *records.SPLITS):
            raise ValueError(f"{self.song_id}: unknown split {self.assigned_split!r}")

    @property
    def key(self) -> str:
        return canonical_key(self.song_id)

    @property
    def hashed_split(self) -> str:
        """The recording-level split: a stable hash of `split_key`, shared by duplicates."""
        return records.split_of(split_key(self.song_id))

    @property
    def split(self) -> str:
        return self.assigned_split or self.hashed_split


@dataclasses.dataclass
class Listing:
    """The tracks of a dataset folder and the ones left out, by reason."""

    tracks: list[Track]
    skipped: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def skip(self, reason: str, song_id: str) -> None:
        self.skipped.setdefault(reason, []).append(song_id)

    def report(self) -> dict[str, int]:
        return {reason: len(ids) for reason, ids in sorted(self.skipped.items())}


@dataclasses.dataclass(frozen=True)
class FileInfo:
    path: str
    sample_rate: int
    num_samples: int

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate


# A file reference "<path>#stream=<k>" names audio stream k of a multi-stream file (the MUSDB18
# .stem.mp4 release), decoded with ffmpeg.
_STREAM = "#stream="


def stream_ref(path: str, stream: int) -> str:
    """Reference to audio stream `stream` of the container `path`."""
    return f"{path}{_STREAM}{stream}"


def _split_ref(ref: str) -> tuple[str, int | None]:
    path, sep, stream = ref.partition(_STREAM)
    return path, (int(stream) if sep else None)


def _ffmpeg(path: str) -> str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise DatasetError(
            f"{path}: decoding needs ffmpeg, which is not installed; install ffmpeg, or use the "
            "uncompressed release (MUSDB18-HQ: wav files, no decoder needed)"
        )
    return ffmpeg


def decode_stream(path: str, stream: int, sample_rate: int = audio.SAMPLE_RATE) -> np.ndarray:
    """Audio stream `stream` of a container file as mono float32 at `sample_rate` (ffmpeg)."""
    # Two channels out, averaged here: ffmpeg's own mono downmix is not the channel mean.
    command = [_ffmpeg(path), "-v", "error", "-i", path, "-map", f"0:{stream}"]
    command += ["-ac", "2", "-ar", str(sample_rate), "-f", "f32le", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise DatasetError(f"{path}: cannot decode audio stream {stream} ({reason})")
    return np.frombuffer(result.stdout, np.float32).reshape(-1, 2).mean(axis=1)


def load_ref(ref: str) -> np.ndarray:
    """A file reference as mono float32 44.1 kHz audio (silence allowed)."""
    path, stream = _split_ref(ref)
    if stream is None:
        return audio.load(path, allow_silent=True)
    return decode_stream(path, stream)


def file_info(ref: str) -> FileInfo:
    """Header of an audio file; a one-line `DatasetError` if it is missing or unreadable."""
    path, stream = _split_ref(ref)
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: missing (listed by the dataset's metadata or layout)")
    if stream is not None:
        return _stream_info(path, stream)
    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        reason = getattr(error, "error_string", None) or str(error).splitlines()[0]
        raise DatasetError(f"{path}: not a readable audio file ({reason})") from None
    return FileInfo(path, int(info.samplerate), int(info.frames))


def _stream_info(path: str, stream: int) -> FileInfo:
    ffprobe = os.path.join(os.path.dirname(_ffmpeg(path)), "ffprobe")
    command = [ffprobe, "-v", "error", "-select_streams", str(stream), "-show_entries"]
    command += ["stream=sample_rate,duration", "-of", "csv=p=0", path]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    fields = result.stdout.strip().split(",")
    if result.returncode != 0 or len(fields) != 2:
        raise DatasetError(f"{path}: no audio stream {stream} (not a 5-stream .stem.mp4?)")
    rate = int(fields[0])
    return FileInfo(stream_ref(path, stream), rate, int(round(float(fields[1]) * rate)))


def check_track(track: Track, clip_length: int = 0) -> str | None:
    """Checks every file of a track; returns a reason to skip it, or None to keep it.

    Raises:
      DatasetError: a file is missing or unreadable (the build must not go on without it).
    """
    infos = [file_info(path) for path in (*track.drums, *track.drumless)]
    if not track.drums:
        return "no drum stem"
    if any(info.num_samples == 0 for info in infos):
        return "empty audio file"
    seconds = [info.seconds for info in infos]
    tolerance = track.max_length_mismatch_s
    if tolerance is not None and max(seconds) - min(seconds) > tolerance:
        return "stems of different lengths"
    if max(seconds) * audio.SAMPLE_RATE < clip_length:
        return "shorter than one clip"
    return None


def sum_files(paths: Sequence[str]) -> np.ndarray:
    """Loads (mono, 44.1 kHz) and sums audio files or stream references, zero-padding each to
    the longest."""
    signals = [load_ref(path) for path in paths]
    if not signals:
        return np.zeros(0, np.float32)
    out = np.zeros(max(len(x) for x in signals), np.float32)
    for x in signals:
        out[: len(x)] += x
    return out


def track_clips(track: Track, clip: records.ClipConfig) -> list[tuple[str, dict]]:
    """The clip records of one track (both stems summed and cut).

    Unity sums of many raw tracks can exceed full scale: then both stems are scaled by one
    gain so that neither they nor their sum clip, and drums + drumless stays the mix.
    """
    drums = sum_files(track.drums)
    drumless = sum_files(track.drumless)
    length = max(len(drums), len(drumless))
    drums, drumless = (np.pad(x, (0, length - len(x))) for x in (drums, drumless))
    peak = max(np.abs(x).max(initial=0.0) for x in (drums, drumless, drums + drumless))
    if peak > 1.0:
        drums, drumless = drums / peak, drumless / peak
    return list(
        records.song_clips(
            track.song_id,
            track.source,
            drums,
            drumless,
            clip,
            true_beats=track.true_beats,
            tempo=track.tempo,
            drum_notes=track.drum_notes,
        )
    )


def with_drum_notes(track: Track, drum_notes: bool) -> Track:
    """`track` whose clip records carry a `drum_notes` field iff `drum_notes`: (0, 3) notes for a
    track that knows none, so that every record of a dataset has the same features."""
    if not drum_notes:
        return track if track.drum_notes is None else dataclasses.replace(track, drum_notes=None)
    if track.drum_notes is None:
        return dataclasses.replace(track, drum_notes=np.zeros((0, 3), np.float32))
    return track


def generate_clips(tracks: Iterable[Track], clip: records.ClipConfig, num_workers: int = 1):
    """(key, record) pairs of every track, loading `num_workers` tracks in parallel processes."""
    tracks = list(tracks)
    for clips in parallel.process_map(
        track_clips, tracks, [clip] * len(tracks), num_workers=num_workers
    ):
        yield from clips


def checked_listing(listing: Listing, clip_length: int = 0) -> Listing:
    """Drops the tracks that fail `check_track`, recording why; raises on missing files."""
    kept = Listing(tracks=[], skipped={k: list(v) for k, v in listing.skipped.items()})
    for track in listing.tracks:
        reason = check_track(track, clip_length)
        if reason is None:
            kept.tracks.append(track)
        else:
            kept.skip(reason, track.song_id)
    return kept


def log_skipped(name: str, listing: Listing) -> None:
    """One warning per reason, with the count and the first few IDs."""
    for reason, ids in sorted(listing.skipped.items()):
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        logging.warning("%s: skipped %d track(s): %s (%s)", name, len(ids), reason, shown)


def by_split(tracks: Iterable[Track]) -> dict[str, list[Track]]:
    """Tracks grouped by their split (`Track.split`; every split, maybe empty)."""
    out = collections.OrderedDict((split, []) for split in records.SPLITS)
    for track in tracks:
        out[track.split].append(track)
    return out


# ------------------------------------------------------------------------------ builder


@dataclasses.dataclass(eq=False)
class MultitrackConfig(tfds.core.BuilderConfig):
    """Clip settings plus how tracks are checked and loaded."""

    clip: records.ClipConfig = records.ClipConfig()
    # Every record has a `drum_notes` field (`records.DRUM_NOTES_DOC`; (0, 3) where unknown).
    drum_notes: bool = False


def default_configs(config_class=MultitrackConfig, **overrides) -> list[MultitrackConfig]:
    """The two configs every multitrack builder offers, of `config_class`."""
    return [
        config_class(
            name="default",
            description="2**20-sample clips, 50 % overlap (the paper's slicing).",
            clip=records.ClipConfig(tracker="madmom"),
            **overrides,
        ),
        config_class(
            name="downbeat",
            description="2**20-sample clips cut on downbeats > 24 s apart (the reference code).",
            clip=records.ClipConfig(segmentation="downbeat", min_gap_s=24.0, tracker="madmom"),
            **overrides,
        ),
    ]


class MultitrackBuilder(
    records.ParallelBuild, tfds.core.GeneratorBasedBuilder, skip_registration=True
):
    """Base of the builders over a downloaded multitrack dataset in `manual_dir`.

    A subclass sets `VERSION`, `BUILDER_CONFIGS`, `MANUAL_DOWNLOAD_INSTRUCTIONS` and implements
    `list_tracks` (or, to combine datasets, `usable_tracks`); everything else (checks, splits,
    clips, the skip report) happens here.
    """

    HOMEPAGE: str = ""

    def list_tracks(self, root: str) -> Listing:
        """The tracks of the dataset folder `root` with their drum / drumless files."""
        raise NotImplementedError

    def usable_tracks(self, root: str) -> Listing:
        """`list_tracks` after `checked_listing`: what the build will read."""
        return checked_listing(self.list_tracks(root), self.builder_config.clip.clip_length)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=records.features(
                self.builder_config.clip, drum_notes=self.builder_config.drum_notes
            ),
            homepage=self.HOMEPAGE,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        root = os.fspath(getattr(dl_manager, "_manual_dir", None) or "--manual_dir")
        if not os.path.isdir(root) or not [n for n in os.listdir(root) if not is_hidden(n)]:
            # Before TFDS's own check, whose message spans many lines.
            raise DatasetError(f"{root}: empty or missing folder; {self.name} expects a download")
        root = os.fspath(dl_manager.manual_dir)
        listing = self.usable_tracks(root)
        if not listing.tracks:
            raise DatasetError(f"{root}: no usable {self.name} track ({listing.report()})")
        log_skipped(self.name, listing)
        self.info.metadata["num_tracks"] = len(listing.tracks)
        self.info.metadata["skipped"] = {k: sorted(v) for k, v in listing.skipped.items()}
        splits = by_split(listing.tracks)
        for split in [name for name, tracks in splits.items() if not tracks]:
            # TFDS cannot write an empty split; a tiny folder may not fill all three.
            logging.warning("%s: no recording falls in split %r; it is left out", self.name, split)
            del splits[split]
        return {split: self._generate_examples(tracks) for split, tracks in splits.items()}

    def _generate_examples(self, tracks):
        config = self.builder_config
        tracks = [with_drum_notes(track, config.drum_notes) for track in tracks]
        yield from generate_clips(tracks, config.clip, self.num_workers)
