"""The clip record every dataset builder yields (DESIGN §3) and the clip logic they share.

A builder turns each recording into paired drum / drumless stems and calls `song_clips`, which
cuts the clips (fixed windows or downbeat-aligned), drops clips whose drum stem is silent,
attaches the beat features of the configured tracker and yields `(key, record)` pairs whose
features are `features(config)`; a builder that knows the drum notes (synthstems) passes them
to `song_clips` and declares `features(config, drum_notes=True)`, and its records carry a
`drum_notes` field (`DRUM_NOTES_DOC`; readers take `record.get("drum_notes")`). Splits are
by recording (`split_of`), so no song is in two.
Builders take `ParallelBuild` first, for `num_workers` (songs cut in parallel processes).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Iterator

import jax
import numpy as np

from jdrum import audio as audio_lib
from jdrum import runs
from jdrum.beat import dbn, network

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
BEAT_HOP = 441  # beat features run at 100 frames/s (REFERENCE §0)
BEAT_EMBEDDING_DIM = 50
BEAT_CLASSES = 3  # non-beat, downbeat, beat (the DA2 tracker's classes)
# Every builder's release note for the version that stores the arrays as raw bytes.
RAW_BYTES_NOTE = (
    "Arrays stored as raw bytes, not one proto value per element: the same records, written "
    "faster and read ~10x faster."
)


DRUM_NOTES_DOC = (
    "drum notes starting in the clip: onset in s from clip start, General MIDI drum key "
    "(channel 10), MIDI velocity 1-127"
)


class ParallelBuild:
    """Builder mixin: `num_workers` processes load (or render) and cut songs in parallel.

    A build setting, not part of the config: the records, their order and the dataset's
    version are the same for every value (`jdrum.data.builder(..., num_workers=N)`).
    """

    def __init__(self, *, num_workers: int = 1, **kwargs):
        if num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, not {num_workers}")
        self.num_workers = num_workers
        super().__init__(**kwargs)


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    """How recordings become clip records; part of every builder config (and its version)."""

    clip_length: int = 2**20  # samples; the reference clip is 2**20 = 23.78 s
    hop_length: int = 2**19  # fixed windows: the paper's 50 % overlap
    segmentation: str = "fixed"  # "fixed" windows or "downbeat"-aligned (REFERENCE §1.2)
    min_gap_s: float | None = None  # downbeat mode: None = clip duration; the reference: 24.0
    drop_silent_drums: bool = True  # drop clips whose drum stem fails `audio.is_silent`
    # Beat features of the drumless clip: "none" writes zeros and no beats; otherwise a
    # tracker name of `jdrum.runs.tracker` ("madmom", "run:DIR", "da2:FILE").
    tracker: str = "none"

    def __post_init__(self):
        if self.segmentation not in ("fixed", "downbeat"):
            raise ValueError(f"segmentation must be 'fixed' or 'downbeat': {self.segmentation!r}")
        if self.tracker not in ("none", "madmom") and not self.tracker.startswith(("run:", "da2:")):
            raise ValueError(
                f"unknown tracker {self.tracker!r}: 'none', 'madmom', 'run:DIR', 'da2:FILE'"
            )
        if self.clip_length <= 0 or self.hop_length <= 0:
            raise ValueError("clip_length and hop_length must be positive")

    @property
    def beat_frames(self) -> int:
        """Beat-feature frames per clip: ceil(clip_length / 441) (2,378 for 2**20)."""
        return math.ceil(self.clip_length / BEAT_HOP)


def features(config: ClipConfig, drum_notes: bool = False):
    """The TFDS features of a clip record; with `drum_notes`, also the clip's drum notes."""
    import tensorflow_datasets as tfds

    f = tfds.features
    # Plain tensors: tfds.features.Audio needs TensorFlow even for raw PCM. The large arrays
    # are stored as raw bytes: with TFDS's default (one proto value per element) a
    # synthstems/demo clip took 21.7 ms to read instead of 2.3, and a build 1.4x as long.
    raw = dict(encoding=f.Encoding.BYTES)
    pcm = dict(shape=(config.clip_length,), dtype=np.int16, **raw)
    notes = {}
    if drum_notes:
        notes["drum_notes"] = f.Tensor(shape=(None, 3), dtype=np.float32, doc=DRUM_NOTES_DOC)
    return f.FeaturesDict(
        {
            **notes,
            "drums": f.Tensor(**pcm, doc="drum stem, int16 PCM, mono 44.1 kHz"),
            "drumless": f.Tensor(**pcm, doc="sum of every other stem, int16 PCM, mono 44.1 kHz"),
            "beat_embedding": f.Tensor(
                shape=(config.beat_frames, BEAT_EMBEDDING_DIM),
                dtype=np.float16,
                doc="tracker embedding of the drumless clip at 100 frames/s",
                **raw,
            ),
            "beat_activation": f.Tensor(
                shape=(config.beat_frames, BEAT_CLASSES),
                dtype=np.float32,
                doc="tracker probabilities [non-beat, downbeat, beat] of the drumless clip",
                **raw,
            ),
            "beats": f.Tensor(
                shape=(None, 2), dtype=np.float32, doc="DBN beats: time in s, position in bar"
            ),
            "song_id": f.Text(),
            "source": f.Text(doc="dataset the recording comes from"),
            "clip_index": np.int32,
            "start_sample": np.int64,
            "true_beats": f.Tensor(
                shape=(None, 2),
                dtype=np.float32,
                doc="annotated beats in the clip (s from clip start, position); empty if unknown",
            ),
            "tempo": f.Scalar(dtype=np.float32, doc="annotated tempo in BPM; 0 if unknown"),
        }
    )


def split_of(song_id: str) -> str:
    """The split of a recording: a stable hash of its id cut 80 / 10 / 10."""
    digest = hashlib.sha256(song_id.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    edges = np.cumsum(SPLIT_FRACTIONS)
    return SPLITS[min(int(np.searchsorted(edges, u, side="right")), len(SPLITS) - 1)]


@functools.lru_cache(maxsize=4)
def _jitted_log_mel(spectrogram: audio_lib.SpectrogramConfig):
    return jax.jit(functools.partial(audio_lib.log_mel, config=spectrogram))


def beat_features(drumless_NxL: np.ndarray, config: ClipConfig):
    """(embedding (N, T, 50) float16, activation (N, T, 3), [beats (n_i, 2)]) of drumless
    clips, from the config's tracker; zeros and no beats for tracker "none"."""
    n = len(drumless_NxL)
    embedding = np.zeros((n, config.beat_frames, BEAT_EMBEDDING_DIM), np.float16)
    activation = np.zeros((n, config.beat_frames, BEAT_CLASSES), np.float32)
    beats = [np.zeros((0, 2), np.float32) for _ in range(n)]
    if config.tracker != "none" and n:
        embedding_NxTxD, activation = runs.tracker(config.tracker)(drumless_NxL)
        embedding = embedding_NxTxD.astype(np.float16)
        # madmom's default DBN (threshold 0.05): the reference's high-level DBN (threshold
        # 0.65, `conditions.dbn_high_beats`) finds nothing on weak drumless activations.
        pairs = np.asarray(network.beat_activations(activation))
        beats = [dbn.dbn_beats(pair).astype(np.float32) for pair in pairs]
    return embedding, activation, beats


def song_clips(
    song_id: str,
    source: str,
    drums: np.ndarray,
    drumless: np.ndarray,
    config: ClipConfig,
    true_beats: np.ndarray | None = None,
    tempo: np.ndarray | None = None,
    drum_notes: np.ndarray | None = None,
) -> Iterator[tuple[str, dict]]:
    """Cuts one recording into clip records.

    Args:
      song_id: unique, stable id of the recording (keys and splits derive from it).
      source: the dataset name.
      drums: (n,) float32 drum stem at 44.1 kHz.
      drumless: (m,) float32 sum of the other stems; the shorter stem is zero-padded.
      config: clip settings.
      true_beats: optional (k, 2) annotated beats (time in s, position in bar, 1 = downbeat).
      tempo: optional (k,) tempo in BPM at each annotated beat.
      drum_notes: optional (j, 3) drum notes of the song (onset s, General MIDI key, MIDI
        velocity); given, every record has a `drum_notes` field (`features(drum_notes=True)`).

    Yields:
      (key, record) with key "<song_id>/<clip index>"; clip indices count the kept clips.
    """
    length = max(len(drums), len(drumless))
    drums = np.pad(np.asarray(drums, np.float32), (0, length - len(drums)))
    drumless = np.pad(np.asarray(drumless, np.float32), (0, length - len(drumless)))
    sr = audio_lib.SAMPLE_RATE
    if true_beats is not None:
        true_beats = np.asarray(true_beats, np.float64).reshape(-1, 2)
    if config.segmentation == "fixed":
        starts = audio_lib.fixed_clip_starts(length, config.clip_length, config.hop_length)
    else:
        if true_beats is not None and len(true_beats):
            beats = true_beats
        else:
            beats = dbn.track_beats(drums + drumless)
        downbeats = beats[beats[:, 1] == 1, 0]
        starts = audio_lib.downbeat_clip_starts(
            downbeats, length, config.clip_length, sr, config.min_gap_s
        )
    if drum_notes is not None:
        drum_notes = np.asarray(drum_notes, np.float64).reshape(-1, 3)
    log_mel = _jitted_log_mel(audio_lib.DEFAULT_SPECTROGRAM)
    kept = []
    for start in starts:
        drum_clip = audio_lib.to_pcm16(drums[start : start + config.clip_length])
        if not (
            config.drop_silent_drums
            and audio_lib.is_silent(log_mel(audio_lib.from_pcm16(drum_clip)))
        ):
            kept.append((int(start), drum_clip))
    drumless_clips = [
        audio_lib.to_pcm16(drumless[start : start + config.clip_length]) for start, _ in kept
    ]
    # One tracker call per song: the clips of a song are tracked as a batch.
    embeddings, activations, dbn_beats = beat_features(
        np.stack([audio_lib.from_pcm16(x) for x in drumless_clips]) if kept else [], config
    )
    for clip_index, ((start, drum_clip), drumless_clip) in enumerate(
        zip(kept, drumless_clips, strict=True)
    ):
        stop = start + config.clip_length
        clip_beats = np.zeros((0, 2), np.float32)
        clip_tempo = 0.0
        if true_beats is not None:
            # A beat belongs to the clip holding its (rounded) sample, like the clip starts.
            beat_samples = np.round(true_beats[:, 0] * sr)
            inside = (beat_samples >= start) & (beat_samples < stop)
            times = np.maximum(true_beats[inside, 0] - start / sr, 0.0)
            clip_beats = np.stack([times, true_beats[inside, 1]], axis=-1)
            if tempo is not None and inside.any():
                clip_tempo = float(np.median(np.asarray(tempo)[inside]))
        record = {
            "drums": drum_clip,
            "drumless": drumless_clip,
            "beat_embedding": embeddings[clip_index],
            "beat_activation": activations[clip_index],
            "beats": dbn_beats[clip_index],
            "song_id": song_id,
            "source": source,
            "clip_index": np.int32(clip_index),
            "start_sample": np.int64(start),
            "true_beats": clip_beats.astype(np.float32),
            "tempo": np.float32(clip_tempo),
        }
        if drum_notes is not None:  # like the beats: a note is in the clip holding its sample
            note_samples = np.round(drum_notes[:, 0] * sr)
            inside = (note_samples >= start) & (note_samples < stop)
            clip_notes = drum_notes[inside] - [start / sr, 0.0, 0.0]
            record["drum_notes"] = np.maximum(clip_notes, 0.0).astype(np.float32)
        yield f"{song_id}/{clip_index:04d}", record
