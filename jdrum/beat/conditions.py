"""The three beat-information levels of the LM (REFERENCE §4.3, §4.4), for inputs of any length.

A drumless signal of L samples at 44.1 kHz gives

* T = ceil(L / 441) beat-tracker frames at 100 frames/s (`num_tracker_frames`), with the
  tracker's per-frame `embedding` (T, 50) and `probabilities` (T, 3) ordered
  [non-beat, downbeat, beat];
* n = L // 1024 LM tokens (`num_tokens`): the mel has L // 256 frames and a token covers 4 of
  them, so 2**20 samples give exactly 1024 tokens. Token k covers samples [1024 k, 1024 (k + 1)).

Every level is a sequence on that token grid:

* **low** (n, 50): the tracker embedding resampled by nearest neighbour, row k = frame
  floor(k T / n) (for T = 2378, n = 1024: frames 0, 2, 4, ..., 2375).
* **mid** (n,) {0, 1}: peaks of max(P(beat), P(downbeat)) (scipy `find_peaks`, height 0.1,
  distance 7 frames, prominence 0.1) marked on the token that holds them.
* **high** (n,) {0, 1, 2, ...}: DBN beats marked with their position in the bar (1 = downbeat),
  0 elsewhere; the LM embeds `high_labels(high)` in {0, 1, 2}. Which DBN is the LM's
  `high_dbn` (`HIGH_DBNS`): "madmom" (the default of the high-level LMs jdrum trains: madmom's
  default DBN, threshold 0.05, `jdrum.beat.dbn.decode`) or "reference" (the REFERENCE §4.3 DBN,
  threshold 0.65, `dbn_high_beats`, for the reference's checkpoints). Measured on the drumless
  stems of synthstems/demo's 73 test clips (3 s, 6.6 true beats each): the reference DBN finds
  no beat in any of them (the drumless beat activation never reaches 0.65), madmom's default
  6.2 beats per clip, beat F1 0.735 [0.67, 0.79] and downbeat F1 0.57 against the true beats.

An event at time t s falls on token floor(floor(t 44100) / 1024); events on tokens >= n (or
before 0) are dropped. The reference fixed n at 1024 and overflowed for longer inputs
(REFERENCE §5.3); here n always follows from the input length.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.signal

from jdrum.audio import SAMPLE_RATE
from jdrum.beat import dbn

TOKEN_HOP = 1024  # samples per LM token: 4 mel frames of 256 samples
TRACKER_HOP = 441  # samples per beat-tracker frame
TRACKER_FPS = SAMPLE_RATE // TRACKER_HOP  # 100 frames/s

# Columns of the tracker's `probabilities`.
NON_BEAT, DOWNBEAT, BEAT = 0, 1, 2

# Mid level: scipy.signal.find_peaks arguments (REFERENCE §4.3).
PEAK_HEIGHT = 0.1
PEAK_DISTANCE = 7  # frames
PEAK_PROMINENCE = 0.1

# High level: madmom DBNDownBeatTrackingProcessor arguments (REFERENCE §4.3). Not the madmom
# defaults that `jdrum.beat.dbn` uses for clip slicing.
HIGH_DBN = dict(
    beats_per_bar=(3, 4),
    min_bpm=60.0,
    max_bpm=200.0,
    num_tempi=80,
    transition_lambda=150.0,
    observation_lambda=8.0,
    threshold=0.65,
    fps=TRACKER_FPS,
)
NUM_HIGH_LABELS = 3  # 0 none, 1 downbeat, 2 any other beat
# The high level's DBN (an LM's `high_dbn`): madmom's defaults (`jdrum.beat.dbn.decode`) or the
# REFERENCE §4.3 parameters above (`dbn_high_beats`), which the reference's checkpoints expect.
HIGH_DBNS = ("madmom", "reference")

# Beat times are frame / 100 in float; t * 44100 can land a hair below an exact sample count
# (0.35 * 44100 = 15434.999...). This nudge, far below one sample, makes the sample index the exact
# frame * 441 the reference means. The reference's bare floor is one sample short there, which
# moves a token only for frames that are multiples of 1024 (the first at 358 s, never in a clip).
_SAMPLE_EPS = 1e-4


def num_tokens(num_samples: int, token_hop: int = TOKEN_HOP) -> int:
    """LM tokens for a signal of `num_samples` samples: num_samples // token_hop (2**20 -> 1024)."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return int(num_samples) // token_hop


def num_tracker_frames(num_samples: int) -> int:
    """Beat-tracker frames for a signal of `num_samples` samples: ceil(num_samples / 441)."""
    return math.ceil(int(num_samples) / TRACKER_HOP)


def times_to_tokens(times_s) -> np.ndarray:
    """Token index floor(floor(t * 44100) / 1024) of each event time in s, as int64."""
    samples = np.floor(np.asarray(times_s, np.float64) * SAMPLE_RATE + _SAMPLE_EPS)
    return (samples // TOKEN_HOP).astype(np.int64)


def _mark(events_tokens: np.ndarray, values: np.ndarray, n_tokens: int) -> np.ndarray:
    """(n_tokens,) int32 with values[i] at events_tokens[i]; the last event on a token wins."""
    out = np.zeros(n_tokens, np.int32)
    keep = (events_tokens >= 0) & (events_tokens < n_tokens)
    tokens, values = events_tokens[keep], values[keep]
    # np.unique on the reversed list gives each token's last occurrence in the original order.
    uniq, first_in_reversed = np.unique(tokens[::-1], return_index=True)
    out[uniq] = values[::-1][first_in_reversed]
    return out


# ------------------------------------------------------------------------------------ low


def low_frame_indices(num_frames: int, n_tokens: int) -> np.ndarray:
    """(n_tokens,) tracker frame used by each token: floor(k * num_frames / n_tokens)."""
    if n_tokens > 0 and num_frames <= 0:
        raise ValueError(f"cannot resample {num_frames} tracker frames to {n_tokens} tokens")
    return (np.arange(n_tokens, dtype=np.int64) * num_frames) // max(n_tokens, 1)


def low_condition(embedding_TxD, n_tokens: int):
    """Nearest-neighbour resampling of the tracker embedding to the token grid (REFERENCE §4.4).

    Args:
      embedding_TxD: (..., T, D) tracker embedding (D = 50), NumPy or jax array; leading axes
        are batch axes.
      n_tokens: number of tokens, `num_tokens(num_samples)`.

    Returns:
      (..., n_tokens, D) array of the same kind and dtype; row k is frame floor(k T / n_tokens).
    """
    idx = low_frame_indices(embedding_TxD.shape[-2], n_tokens)
    return embedding_TxD[..., idx, :]


# ------------------------------------------------------------------------------------ mid


def beat_peak_frames(probabilities_Tx3) -> np.ndarray:
    """Frames of the peaks of max(P(beat), P(downbeat)) (REFERENCE §4.3 mid level)."""
    probabilities_Tx3 = np.asarray(probabilities_Tx3, np.float64)
    activation_T = np.maximum(probabilities_Tx3[:, BEAT], probabilities_Tx3[:, DOWNBEAT])
    peaks, _ = scipy.signal.find_peaks(
        activation_T, height=PEAK_HEIGHT, distance=PEAK_DISTANCE, prominence=PEAK_PROMINENCE
    )
    return peaks


def mid_condition(probabilities_Tx3, num_samples: int) -> np.ndarray:
    """Beat-peak track on the token grid: (num_tokens(num_samples),) int32 in {0, 1}.

    A peak at tracker frame p (time p / 100 s) sets token floor(floor(p 441) / 1024) to 1.
    """
    tokens = times_to_tokens(beat_peak_frames(probabilities_Tx3) / TRACKER_FPS)
    return _mark(tokens, np.ones_like(tokens), num_tokens(num_samples))


# ----------------------------------------------------------------------------------- high


@functools.lru_cache(maxsize=1)
def _high_dbn():
    from jdrum.beat.madmom_compat import madmom

    params = dict(HIGH_DBN, beats_per_bar=list(HIGH_DBN["beats_per_bar"]))
    return madmom.features.downbeats.DBNDownBeatTrackingProcessor(**params)


def dbn_high_beats(probabilities_Tx3) -> np.ndarray:
    """The REFERENCE §4.3 DBN (60-200 BPM, 80 tempi, lambda 150 / 8, threshold 0.65, 3/4 bars).

    Args:
      probabilities_Tx3: (T, 3) tracker probabilities [non-beat, downbeat, beat] at 100 fps.

    Returns:
      (n, 2) float64 beat times in s and positions in the bar (1 = downbeat); (0, 2) when no
      activation reaches the threshold.
    """
    probabilities_Tx3 = np.asarray(probabilities_Tx3, np.float64)
    if len(probabilities_Tx3) == 0:
        return np.zeros((0, 2))
    # madmom takes the pair [P(beat), P(downbeat)].
    activations_Tx2 = np.ascontiguousarray(probabilities_Tx3[:, [BEAT, DOWNBEAT]])
    beats = _high_dbn()(activations_Tx2)
    return np.asarray(beats, np.float64).reshape(-1, 2)


def high_beats(probabilities_Tx3, high_dbn: str = "madmom") -> np.ndarray:
    """(n, 2) beats of the high level from the DBN named `high_dbn` (one of `HIGH_DBNS`)."""
    if high_dbn == "madmom":
        return dbn.decode(probabilities_Tx3)
    if high_dbn == "reference":
        return dbn_high_beats(probabilities_Tx3)
    raise ValueError(f"high_dbn must be one of {', '.join(HIGH_DBNS)}, got {high_dbn!r}")


def token_field(level: str, high_dbn: str = "madmom") -> str:
    """The token-record field of a beat level: beat_low, beat_mid, beat_high (madmom DBN) or
    beat_high_reference (REFERENCE §4.3 DBN)."""
    return "beat_high_reference" if level == "high" and high_dbn == "reference" else f"beat_{level}"


def high_condition(beats_Nx2, num_samples: int) -> np.ndarray:
    """Beats on the token grid: (num_tokens(num_samples),) int32, position in bar or 0.

    Each beat (time s, position) sets its token to the position (1 = downbeat, 2, 3, ... the
    other beats); of several beats on one token the later one wins (REFERENCE §4.3).
    """
    beats_Nx2 = np.asarray(beats_Nx2, np.float64).reshape(-1, 2)
    beats_Nx2 = beats_Nx2[np.argsort(beats_Nx2[:, 0], kind="stable")]
    positions = np.rint(beats_Nx2[:, 1]).astype(np.int32)
    if (positions < 1).any():
        raise ValueError(f"beat positions in the bar start at 1, got {positions.min()}")
    return _mark(times_to_tokens(beats_Nx2[:, 0]), positions, num_tokens(num_samples))


def high_labels(high):
    """LM labels of a high-level track: 0 none, 1 downbeat, 2 other beat (values > 1 -> 2).

    Works on NumPy and jax arrays alike and returns the same kind, as int32.
    """
    if not hasattr(high, "dtype"):
        high = np.asarray(high)
    return high.clip(max=NUM_HIGH_LABELS - 1).astype(np.int32)


# ------------------------------------------------------------------------------ all three


def beat_conditions(
    embedding_TxD, probabilities_Tx3, num_samples: int, high_dbn: str = "madmom", beats_Nx2=None
) -> dict[str, np.ndarray]:
    """All three levels of one signal, from its beat-tracker outputs.

    The single entry point of the LM (inference) and the data builders (training records).

    Args:
      embedding_TxD: (T, 50) tracker embedding at 100 fps.
      probabilities_Tx3: (T, 3) tracker probabilities [non-beat, downbeat, beat].
      num_samples: length L of the signal the tracker ran on; T must be ceil(L / 441).
      high_dbn: the DBN of the high level (`HIGH_DBNS`).
      beats_Nx2: the beats that DBN gives on these probabilities, if already decoded.

    Returns:
      dict(low=(n, 50) float32, mid=(n,) int32 {0, 1}, high=(n,) int32 positions in the bar),
      n = num_tokens(L). `high` keeps the positions; the LM embeds `high_labels(high)`.
    """
    embedding_TxD = np.asarray(embedding_TxD, np.float32)
    probabilities_Tx3 = np.asarray(probabilities_Tx3, np.float32)
    expected = num_tracker_frames(num_samples)
    if embedding_TxD.ndim != 2 or probabilities_Tx3.shape != (len(embedding_TxD), 3):
        raise ValueError(
            f"expected (T, D) embedding and (T, 3) probabilities, got {embedding_TxD.shape} "
            f"and {probabilities_Tx3.shape}"
        )
    if len(embedding_TxD) != expected:
        raise ValueError(
            f"{num_samples} samples need ceil({num_samples} / {TRACKER_HOP}) = {expected} "
            f"tracker frames, got {len(embedding_TxD)}"
        )
    n_tokens = num_tokens(num_samples)
    return dict(
        low=low_condition(embedding_TxD, n_tokens),
        mid=mid_condition(probabilities_Tx3, num_samples),
        high=high_condition(
            high_beats(probabilities_Tx3, high_dbn) if beats_Nx2 is None else beats_Nx2,
            num_samples,
        ),
    )
