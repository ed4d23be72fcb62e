"""madmom's downbeat RNN and DBN (REFERENCE §1.2, §4.3), used to track beats in audio.

The RNN ensemble and the DBN come from madmom through `madmom_compat`; both are built once per
process and reused.
"""

from __future__ import annotations

import functools

import numpy as np

from jdrum.audio import SAMPLE_RATE

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


def track_beats(
    audio: np.ndarray, sample_rate: int = SAMPLE_RATE, beats_per_bar: tuple[int, ...] = (3, 4)
) -> np.ndarray:
    """Beats and downbeats of mono audio: (n, 2) times in s and positions in the bar."""
    return dbn_beats(downbeat_activations(audio, sample_rate), beats_per_bar)
