"""madmom's downbeat RNN and DBN (REFERENCE §1.2), used to track beats in audio.

The RNN ensemble and the DBN come from madmom through `madmom_compat`; both are built once per
process and reused.

**Every measurement decodes beats here** (`decode`, `dbn_beats`): madmom's
`DBNDownBeatTrackingProcessor` at its defaults (beats_per_bar [3, 4], 55-215 BPM, 60 tempi,
transition lambda 100, observation lambda 16, threshold 0.05), fps 100, over the activations of
the whole signal. The REFERENCE §4.3 DBN (`jdrum.beat.conditions.dbn_high_beats`, threshold
0.65) is a *conditioning* choice of the reference's high-level LMs, not a measuring one: it
decodes only the span between the first and the last frame whose activation reaches 0.65, and on
drum stems and drumless inputs the beat activation rarely gets there, so it finds few or no
beats.
"""

from __future__ import annotations

import functools

import numpy as np

from jdrum.audio import SAMPLE_RATE
from jdrum.beat.network import BEAT, DOWNBEAT

FPS = 100  # madmom's frame rate for beat activations: hop 441 samples at 44.1 kHz


@functools.lru_cache(maxsize=1)
def _rnn():
    from jdrum.beat.madmom_compat import madmom

    return madmom.features.downbeats.RNNDownBeatProcessor()


@functools.lru_cache(maxsize=4)
def _dbn(beats_per_bar: tuple[int, ...]):
    from jdrum.beat.madmom_compat import madmom

    return madmom.features.downbeats.DBNDownBeatTrackingProcessor(
        beats_per_bar=list(beats_per_bar), fps=FPS
    )


def downbeat_activations(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """madmom's `RNNDownBeatProcessor` on mono audio.

    Returns:
      (ceil(num_samples / 441), 2) float32 [beat, downbeat] probabilities at 100 frames/s.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the downbeat RNN expects {SAMPLE_RATE} Hz audio, got {sample_rate}")
    from jdrum.beat.madmom_compat import madmom

    signal = madmom.audio.signal.Signal(np.asarray(audio, np.float32), sample_rate=sample_rate)
    return np.asarray(_rnn()(signal), np.float32)


def dbn_beats(activations: np.ndarray, beats_per_bar: tuple[int, ...] = (3, 4)) -> np.ndarray:
    """madmom's `DBNDownBeatTrackingProcessor` (fps 100, other parameters at madmom defaults).

    Returns:
      (n, 2) float64 beat times in s and positions in the bar (1 = downbeat).
    """
    beats = _dbn(tuple(beats_per_bar))(np.asarray(activations, np.float64))
    return np.asarray(beats, np.float64).reshape(-1, 2)


def decode(probabilities_Tx3) -> np.ndarray:
    """The measuring DBN (`dbn_beats`, madmom's defaults) on a tracker's probabilities.

    Args:
      probabilities_Tx3: (T, 3) [non-beat, downbeat, beat] probabilities at 100 fps, the output
        of `jdrum.beat.tracking` trackers.

    Returns:
      (n, 2) float64 beat times in s and positions in the bar (1 = downbeat); (0, 2) for T = 0.
    """
    probabilities_Tx3 = np.asarray(probabilities_Tx3, np.float64).reshape(-1, 3)
    if len(probabilities_Tx3) == 0:
        return np.zeros((0, 2))
    # [P(beat), P(downbeat)]: the pair madmom's DBN takes (`tracker.beat_activations`).
    return dbn_beats(np.ascontiguousarray(probabilities_Tx3[:, [BEAT, DOWNBEAT]]))


def track_beats(
    audio: np.ndarray, sample_rate: int = SAMPLE_RATE, beats_per_bar: tuple[int, ...] = (3, 4)
) -> np.ndarray:
    """Beats and downbeats of mono audio: (n, 2) times in s and positions in the bar."""
    return dbn_beats(downbeat_activations(audio, sample_rate), beats_per_bar)
