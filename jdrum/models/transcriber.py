"""Drum transcriber: drum audio in, drum notes (onset, General MIDI key, MIDI velocity) out.

Classes (`CLASSES`), the General MIDI drum keys (channel 10) folded into each, and the key each
is exported as (`CLASS_KEYS`):

    0 kick           35 Acoustic Bass Drum, 36 Bass Drum 1                            → 36
    1 snare          38 Acoustic Snare, 37 Side Stick, 39 Hand Clap, 40 Electric Snare → 38
    2 closed_hihat   42 Closed Hi-Hat, 44 Pedal Hi-Hat (synthstems plays no pedal hat) → 42
    3 open_hihat     46 Open Hi-Hat                                                    → 46
    4 low_tom        41 Low Floor Tom, 43 High Floor Tom                               → 43
    5 mid_tom        45 Low Tom, 47 Low-Mid Tom                                        → 47
    6 high_tom       48 Hi-Mid Tom, 50 High Tom                                        → 50
    7 crash          49 Crash 1, 57 Crash 2, 52 Chinese Cymbal, 55 Splash Cymbal       → 49
    8 ride           51 Ride 1, 59 Ride 2, 53 Ride Bell                                → 51

Other percussion keys (cowbell, congas, ...) belong to no class (`class_of_key` is None).
synthstems plays one key per class (`jdrum.datasets.soundfont.DRUM_KEYS`: 36 38 42 46 43 47
50 49 51), so its notes survive the folding unchanged.

Frames are the front end's (`jdrum.audio.log_mel`: n_fft 1024, 80 Slaney bands) at hop 512:
86.1 frames/s, 11.6 ms apart, frame j centred on sample 512 j + 256 (`frame_times`); a note's
frame is the one centred nearest its onset (`onset_frames`), so onsets are placed to ±5.8 ms
before the sub-frame interpolation, far inside the 50 ms of the evaluation. (Hop 256 costs
2.4x the training time per step on a CPU, time that the tiny config spends better on steps.)
Each frame also carries the lowest 40 bins (0-420 Hz, 10.8 Hz apart) of a 4096-sample STFT
centred on the same sample, taken on the audio decimated by 8 (`features`): the 1024-sample
window's bins are 43 Hz apart, too coarse for the toms' pitches, a fourth apart.

Network (`Transcriber`, sizes in `TranscriberConfig`), per frame:

    input    (log10 features − MEL_OFFSET) / MEL_SCALE: silence (−5) → −1.25, loud → ~1
    conv     over the mel bands, per entry of `conv_channels`: 3×3 conv over (time, mel),
             ReLU, max-pool of the mel axis by 2 (time keeps its rate)
    dense    the flattened (mel × channels) and the scaled input frame (mel and pitch bins
             at full resolution) → `dense` units, ReLU
    rnn      `num_layers` bidirectional LSTMs of `hidden` units per direction
             (`jdrum.beat.network.BiLSTM`: the input projection of every frame at once, only
             the recurrence sequential)
    heads    Dense → one onset logit per class; Dense + sigmoid → one velocity per class
             (MIDI velocity / 127), read where an onset is found

configs/transcriber.py:tiny (conv 8, 16, 32; dense 128; one BLSTM of 96): 164,706 parameters.

`pick_peaks` turns onset probabilities into notes (threshold, local maximum over a minimum
distance, one tom at a time, sub-frame time by parabolic interpolation); `activations` runs
the network over a song of any length in overlapping chunks; `score` matches notes per class
with `mir_eval.util.match_events` (50 ms) for precision, recall, F1 and the velocity error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdrum import audio
from jdrum.beat import network

CLASSES = (
    "kick",
    "snare",
    "closed_hihat",
    "open_hihat",
    "low_tom",
    "mid_tom",
    "high_tom",
    "crash",
    "ride",
)
CLASS_KEYS = (36, 38, 42, 46, 43, 47, 50, 49, 51)  # the General MIDI key each class exports as
NUM_CLASSES = len(CLASSES)
# General MIDI drum key -> class index (module docstring).
KEY_CLASSES = {
    **dict.fromkeys((35, 36), 0),
    **dict.fromkeys((37, 38, 39, 40), 1),
    **dict.fromkeys((42, 44), 2),
    46: 3,
    **dict.fromkeys((41, 43), 4),
    **dict.fromkeys((45, 47), 5),
    **dict.fromkeys((48, 50), 6),
    **dict.fromkeys((49, 52, 55, 57), 7),
    **dict.fromkeys((51, 53, 59), 8),
}
MEL_OFFSET = -2.5  # input scaling of the log10 mel
MEL_SCALE = 2.0
# The pitch bins' STFT runs on the audio averaged over blocks of this many samples (`features`).
PITCH_DECIMATION = 8
# Scales its magnitudes to about the mel's level (a mel band of the 1024-sample window sums
# magnitudes with Slaney weights of ~0.03; the 512-sample decimated window sums half as many).
PITCH_GAIN = 0.08
HOP_LENGTH = 512  # the default frame hop (module docstring)
# Classes of which one sounds at a time (`pick_peaks`): the toms. (Not the hi-hat's open and
# closed: where the net hears both at an open hit, the closed one is often the stronger, and
# dropping the open one cost open hi-hat F1 0.66 → 0.56 on synthstems/eval.)
EXCLUSIVE_CLASSES = ((4, 5, 6),)
ONSET_WINDOW_S = 0.05  # mir_eval's onset tolerance, used by `score`


def class_of_key(key) -> int | None:
    """The class index of a General MIDI drum key, None for keys of no class."""
    return KEY_CLASSES.get(int(round(float(key))))


# ---------------------------------------------------------------------------------- network


@dataclasses.dataclass(frozen=True)
class TranscriberConfig:
    """Sizes of the transcriber (`config.model` of a transcriber run)."""

    hop_length: int = HOP_LENGTH  # mel hop; 44.1 kHz / 512 = 86.1 frames/s
    n_mels: int = 80
    # Low-frequency detail for the toms' pitch: the lowest `pitch_bins` bins of an STFT of
    # `pitch_fft` samples (4096: 10.8 Hz a bin; 0 bins: none), at the mel's frames.
    pitch_fft: int = 4096
    pitch_bins: int = 40
    conv_channels: tuple[int, ...] = (16, 16, 32)  # one 3x3 conv (and mel pool by 2) each
    dense: int = 128  # units after the flattened conv features
    hidden: int = 64  # LSTM units per direction
    num_layers: int = 1  # bidirectional LSTM layers
    dtype: str = "float32"  # compute dtype of the matmuls; parameters stay float32

    def __post_init__(self):
        d = PITCH_DECIMATION
        if self.pitch_bins and (self.hop_length % d or self.pitch_fft % d):
            raise ValueError(f"hop_length and pitch_fft must be multiples of {d} for pitch bins")
        if self.pitch_bins > self.pitch_fft // d // 2 + 1:
            raise ValueError(f"pitch_bins {self.pitch_bins} > the {self.pitch_fft} STFT's bins")

    @property
    def spectrogram(self) -> audio.SpectrogramConfig:
        return audio.SpectrogramConfig(hop_length=self.hop_length, n_mels=self.n_mels)

    @property
    def num_features(self) -> int:
        """Values per input frame: the mel bands, then the pitch bins."""
        return self.n_mels + self.pitch_bins

    @property
    def frame_rate(self) -> float:
        return audio.SAMPLE_RATE / self.hop_length

    def make(self) -> Transcriber:
        return Transcriber(
            n_mels=self.n_mels,
            conv_channels=tuple(self.conv_channels),
            dense=self.dense,
            hidden=self.hidden,
            num_layers=self.num_layers,
            dtype=jnp.dtype(self.dtype),
        )


class Transcriber(nn.Module):
    """Input frames (`features`) → per-class onset logits and velocities (module docstring)."""

    n_mels: int = 80  # the input's first n_mels values are mel bands, the rest pitch bins
    conv_channels: Sequence[int] = (16, 16, 32)
    dense: int = 128
    hidden: int = 64
    num_layers: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features_BxTxF: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Runs the network.

        Args:
          features_BxTxF: input frames (`features`): log10 mel, then log10 pitch bins.

        Returns:
          onset_logits_BxTxC: one logit per class and frame (float32).
          velocity_BxTxC: MIDI velocity / 127 in (0, 1) per class and frame (float32).
        """
        scaled_BxTxF = ((features_BxTxF - MEL_OFFSET) / MEL_SCALE).astype(self.dtype)
        x = scaled_BxTxF[..., : self.n_mels, None]
        for i, channels in enumerate(self.conv_channels):
            x = nn.Conv(channels, (3, 3), padding="SAME", dtype=self.dtype, name=f"conv_{i}")(x)
            x = nn.max_pool(nn.relu(x), (1, 2), strides=(1, 2))
        # The pooled conv features and the frame's own input at full resolution: the mel and
        # the pitch bins tell the toms (85-210 Hz in synthstems, a fourth apart) apart.
        x = jnp.concatenate([x.reshape(*x.shape[:2], -1), scaled_BxTxF], axis=-1)
        x = nn.relu(nn.Dense(self.dense, dtype=self.dtype, name="dense")(x))
        for i in range(self.num_layers):
            x = network.BiLSTM(self.hidden, dtype=self.dtype, name=f"blstm_{i}")(x)
        onset_logits_BxTxC = nn.Dense(NUM_CLASSES, dtype=self.dtype, name="onset")(x)
        velocity_BxTxC = nn.sigmoid(nn.Dense(NUM_CLASSES, dtype=self.dtype, name="velocity")(x))
        return onset_logits_BxTxC.astype(jnp.float32), velocity_BxTxC.astype(jnp.float32)


def features(audio_BxL: jax.Array, config: TranscriberConfig) -> jax.Array:
    """(B, L // hop, num_features) input frames of float audio: the front end's log10 mel
    (`jdrum.audio.log_mel` at the config's hop), then log10 of the lowest `pitch_bins` STFT
    magnitudes of a `pitch_fft`-sample window centred on the same sample
    (`audio.stft_magnitude` of the audio decimated by `PITCH_DECIMATION`)."""
    mel_BxTxM = jnp.swapaxes(audio.log_mel(audio_BxL, config.spectrogram), -1, -2)
    if not config.pitch_bins:
        return mel_BxTxM
    # Only 0-420 Hz is kept: the STFT runs on the audio averaged over blocks of 8 samples
    # (5.5 kHz; the block mean's nulls at multiples of 5.5 kHz keep what folds onto the kept
    # bins 22 dB down or more), 8x less work than on the 44.1 kHz audio, same bins.
    d = PITCH_DECIMATION
    x_BxL = jnp.asarray(audio_BxL)
    length = x_BxL.shape[-1] // d * d
    decimated_BxK = x_BxL[..., :length].reshape(*x_BxL.shape[:-1], -1, d).mean(-1)
    long = audio.SpectrogramConfig(n_fft=config.pitch_fft // d, hop_length=config.hop_length // d)
    low_BxTxP = audio.stft_magnitude(decimated_BxK, long)[..., : config.pitch_bins]
    pitch_BxTxP = jnp.log10(jnp.maximum(low_BxTxP * PITCH_GAIN, long.log_floor))
    return jnp.concatenate([mel_BxTxM, pitch_BxTxP.astype(mel_BxTxM.dtype)], axis=-1)


# ----------------------------------------------------------------------------- frames, notes


def frame_times(frames, hop_length: int = HOP_LENGTH, sample_rate: int = audio.SAMPLE_RATE):
    """Seconds of (fractional) frame indices: frame j is centred on sample hop j + hop / 2."""
    return (np.asarray(frames, np.float64) + 0.5) * hop_length / sample_rate


def onset_frames(times_s, hop_length: int = HOP_LENGTH, sample_rate: int = audio.SAMPLE_RATE):
    """The frame centred nearest each onset (int64)."""
    frames = np.asarray(times_s, np.float64) * sample_rate / hop_length - 0.5
    return np.round(frames).astype(np.int64)


def pick_peaks(
    onset_TxC: np.ndarray,
    velocity_TxC: np.ndarray,
    threshold: float | Sequence[float] = 0.5,
    min_distance: int = 2,
    hop_length: int = HOP_LENGTH,
    sample_rate: int = audio.SAMPLE_RATE,
    interpolate: bool = True,
    exclusive: Sequence[Sequence[int]] = EXCLUSIVE_CLASSES,
) -> np.ndarray:
    """Notes from per-class onset probabilities.

    A note is a frame whose probability reaches `threshold` and is the largest within
    `min_distance` frames on either side (of a plateau, its first frame); its time moves by
    parabolic interpolation through the frame and its two neighbours (at most half a frame:
    a plateau's note moves half a frame into it), its velocity is the velocity head's at the
    frame. Within a group of `exclusive` classes a note within `min_distance` frames of a
    more probable note of another class of the group is dropped: one drummer rarely hits two
    toms at once, while the net, unsure of a tom's pitch, often hears two (`EXCLUSIVE_CLASSES`;
    on synthstems/eval tom F1 0.73/0.67/0.68 → 0.92/0.81/0.85).

    Args:
      onset_TxC: onset probabilities in [0, 1].
      velocity_TxC: MIDI velocity / 127.
      threshold: one for all classes or one per class.
      min_distance: frames; two notes of a class are at least this far apart + 1.
      hop_length, sample_rate: the frame geometry (`frame_times`).
      interpolate: parabolic sub-frame times (False: frame centres).
      exclusive: groups of class indices of which one sounds at a time; () for none.

    Returns:
      (N, 3) float64 [onset s, General MIDI key (`CLASS_KEYS`), MIDI velocity 1-127], sorted
      by time (then key).
    """
    onset_TxC = np.asarray(onset_TxC, np.float64)
    num_frames, num_classes = onset_TxC.shape
    if not num_frames:
        return np.zeros((0, 3))
    thresholds = np.broadcast_to(np.asarray(threshold, np.float64), (num_classes,))
    padded = np.pad(onset_TxC, ((min_distance, min_distance), (0, 0)), constant_values=-1.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * min_distance + 1, axis=0)
    before, after = windows[..., :min_distance], windows[..., min_distance + 1 :]
    is_peak = (onset_TxC >= thresholds) & (onset_TxC > before.max(-1, initial=-1.0))
    is_peak &= onset_TxC >= after.max(-1, initial=-1.0)
    frames, classes = np.nonzero(is_peak)
    keep = np.ones(len(frames), bool)
    for group in exclusive:
        (members,) = np.nonzero(np.isin(classes, group))
        # Strongest first: each note drops the weaker notes of the group near it.
        for i in members[np.argsort(-onset_TxC[frames[members], classes[members]], kind="stable")]:
            if keep[i]:
                near = np.abs(frames[members] - frames[i]) <= min_distance
                rivals = members[near & (classes[members] != classes[i])]
                keep[rivals] = False
    frames, classes = frames[keep], classes[keep]
    offsets = np.zeros(len(frames))
    if interpolate and len(frames):
        left = onset_TxC[np.maximum(frames - 1, 0), classes]
        right = onset_TxC[np.minimum(frames + 1, num_frames - 1), classes]
        centre = onset_TxC[frames, classes]
        curvature = left - 2 * centre + right
        safe = np.where(curvature < -1e-9, curvature, -1.0)
        offsets = np.where(curvature < -1e-9, 0.5 * (left - right) / safe, 0.0).clip(-0.5, 0.5)
    velocity = np.asarray(velocity_TxC, np.float64)[frames, classes]
    notes = np.stack(
        [
            frame_times(frames + offsets, hop_length, sample_rate),
            np.asarray(CLASS_KEYS, np.float64)[classes],
            np.clip(np.round(127 * velocity), 1, 127),
        ],
        axis=-1,
    ).reshape(-1, 3)
    return notes[np.lexsort((notes[:, 1], notes[:, 0]))]


def activations(
    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    audio_L: np.ndarray,
    hop_length: int,
    chunk_frames: int,
    context_frames: int,
    batch_size: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Onset probabilities and velocities of a whole song, (T, C) each, T = len // hop.

    The song is cut into chunks of `chunk_frames` frames, each read with `context_frames`
    frames of audio on either side (zeros beyond the song), so every call of `predict` has the
    same shape; each chunk keeps only its own frames. With context the chunked result matches
    one pass over the whole song closely (the LSTM's state forgets the cut).

    Args:
      predict: (B, window samples) float32 audio -> ((B, W, C) probabilities, (B, W, C)
        velocities), W = chunk_frames + 2 context_frames; B is always `batch_size`.
      audio_L: float mono audio.
      hop_length: samples per frame.
      chunk_frames, context_frames: frames per chunk and of context on either side.
      batch_size: windows per `predict` call.
    """
    audio_L = np.asarray(audio_L, np.float32)
    num_frames = len(audio_L) // hop_length
    num_chunks = max(1, -(-num_frames // chunk_frames))
    window = (chunk_frames + 2 * context_frames) * hop_length
    margin = context_frames * hop_length
    padded = np.zeros(num_chunks * chunk_frames * hop_length + 2 * margin, np.float32)
    padded[margin : margin + len(audio_L)] = audio_L
    starts = np.arange(num_chunks) * chunk_frames * hop_length
    onsets, velocities = [], []
    for first in range(0, num_chunks, batch_size):
        batch = np.zeros((batch_size, window), np.float32)
        chosen = starts[first : first + batch_size]
        for row, start in enumerate(chosen):
            batch[row] = padded[start : start + window]
        onset_BxWxC, velocity_BxWxC = predict(batch)
        keep = slice(context_frames, context_frames + chunk_frames)
        onsets += list(np.asarray(onset_BxWxC)[: len(chosen), keep])
        velocities += list(np.asarray(velocity_BxWxC)[: len(chosen), keep])
    return np.concatenate(onsets)[:num_frames], np.concatenate(velocities)[:num_frames]


def predictor(model: Transcriber, config: TranscriberConfig) -> Callable:
    """jit((params, audio (B, L)) -> (onset probabilities, velocities)), each (B, L // hop, C)."""

    @jax.jit
    def predict(params, audio_BxL):
        logits_BxTxC, velocity_BxTxC = model.apply(params, features(audio_BxL, config))
        return jax.nn.sigmoid(logits_BxTxC), velocity_BxTxC

    return predict


# ------------------------------------------------------------------------------------ scores


def notes_by_class(notes_Nx3: np.ndarray) -> list[np.ndarray]:
    """Per class, the notes (rows) of keys that fold into it; notes of no class are left out."""
    notes_Nx3 = np.asarray(notes_Nx3, np.float64).reshape(-1, 3)
    classes = np.array([-1 if (c := class_of_key(k)) is None else c for k in notes_Nx3[:, 1]])
    return [notes_Nx3[classes == c] for c in range(NUM_CLASSES)]


def match_counts(
    reference_Nx3: np.ndarray, estimated_Mx3: np.ndarray, window: float = ONSET_WINDOW_S
) -> dict[str, np.ndarray]:
    """Per class: reference and estimated note counts, matched pairs (mir_eval's onset
    matching, `window` s) and the sum of |velocity difference| over the pairs.

    Returns:
      {"reference", "estimated", "matched", "velocity_error_sum"}: (C,) arrays.
    """
    import mir_eval

    counts = {k: np.zeros(NUM_CLASSES) for k in ("reference", "estimated", "matched")}
    counts["velocity_error_sum"] = np.zeros(NUM_CLASSES)
    by_class = zip(notes_by_class(reference_Nx3), notes_by_class(estimated_Mx3), strict=True)
    for c, (ref, est) in enumerate(by_class):
        counts["reference"][c], counts["estimated"][c] = len(ref), len(est)
        if len(ref) and len(est):
            pairs = mir_eval.util.match_events(ref[:, 0], est[:, 0], window)
            if pairs:
                i, j = np.asarray(pairs).T
                counts["matched"][c] = len(pairs)
                counts["velocity_error_sum"][c] = np.abs(ref[i, 2] - est[j, 2]).sum()
    return counts


def f_measure(matched, reference, estimated) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F1, precision, recall) from counts, elementwise; 0 where a count is 0 (mir_eval's
    convention)."""
    matched, reference, estimated = (
        np.asarray(x, np.float64) for x in (matched, reference, estimated)
    )
    precision = np.divide(matched, estimated, out=np.zeros_like(matched), where=estimated > 0)
    recall = np.divide(matched, reference, out=np.zeros_like(matched), where=reference > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return f1, precision, recall


def score(
    references: Sequence[np.ndarray],
    estimates: Sequence[np.ndarray],
    window: float = ONSET_WINDOW_S,
) -> dict:
    """Transcription scores of songs, pooled and per song.

    Args:
      references, estimates: per song, (N, 3) notes [onset s, key, velocity].
      window: onset tolerance in s (mir_eval's default 0.05).

    Returns:
      {"classes": {name: {"f1", "precision", "recall", "velocity_error", "reference",
      "estimated", "matched"}}, pooled over songs (velocity error: mean |difference| of MIDI
      velocities over matched notes, NaN without any), "all": the same over every class,
      "song_f1": (songs,) F1 of each song over all classes (NaN for a song with no notes in
      either), "song_class_f1": (songs, C) per class (NaN where neither has notes)}.
    """
    songs = [match_counts(r, e, window) for r, e in zip(references, estimates, strict=True)]
    keys = ("reference", "estimated", "matched", "velocity_error_sum")
    per_song = {k: np.array([s[k] for s in songs]).reshape(len(songs), NUM_CLASSES) for k in keys}
    pooled = {k: v.sum(axis=0) for k, v in per_song.items()}

    def summary(counts) -> dict:
        f1, precision, recall = f_measure(
            counts["matched"], counts["reference"], counts["estimated"]
        )
        matched = np.asarray(counts["matched"], np.float64)
        error = np.divide(
            counts["velocity_error_sum"],
            matched,
            out=np.full_like(matched, np.nan),
            where=matched > 0,
        )
        return {
            "f1": f1,
            "precision": precision,
            "recall": recall,
            "velocity_error": error,
            "reference": counts["reference"].astype(np.int64),
            "estimated": counts["estimated"].astype(np.int64),
            "matched": counts["matched"].astype(np.int64),
        }

    by_class = summary(pooled)
    classes = {
        name: {k: v[c].item() for k, v in by_class.items()} for c, name in enumerate(CLASSES)
    }
    overall = summary({k: v.sum(keepdims=True) for k, v in pooled.items()})
    song_f1, _, _ = f_measure(*(per_song[k].sum(-1) for k in ("matched", "reference", "estimated")))
    song_class_f1, _, _ = f_measure(
        per_song["matched"], per_song["reference"], per_song["estimated"]
    )
    empty = (per_song["reference"] + per_song["estimated"]) == 0
    return {
        "classes": classes,
        "all": {k: v[0].item() for k, v in overall.items()},
        "song_f1": np.where(empty.all(-1), np.nan, song_f1),
        "song_class_f1": np.where(empty, np.nan, song_class_f1),
    }
