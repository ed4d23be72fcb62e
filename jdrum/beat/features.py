"""The beat trackers' 314-dim input features (REFERENCE §4.1), from madmom's own processors.

Three chains (frame sizes 1024 / 2048 / 4096, 3 / 6 / 12 bands per octave), each
framing → magnitude STFT → log filterbank (30 Hz-17 kHz, area-normalised) → log10(1 + S) →
positive difference stacked after the spectrum, at 100 frames/s. These are the processors and
parameters of madmom's `RNNDownBeatProcessor`, so `madmom_features` is exactly the array that
processor feeds its networks (and what DA2's `madmom_feature` computes).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from jdrum.audio import SAMPLE_RATE

FPS = 100
HOP = SAMPLE_RATE // FPS  # 441 samples
FRAME_SIZES = (1024, 2048, 4096)
BANDS_PER_OCTAVE = (3, 6, 12)
NUM_FEATURES = 314  # 2 · (21 + 45 + 91)


def num_frames(num_samples: int) -> int:
    """Feature frames for a signal of `num_samples` samples: ceil(num_samples / 441)."""
    return math.ceil(num_samples / HOP)


@functools.lru_cache(maxsize=1)
def _chains():
    """The three spec+diff chains of `RNNDownBeatProcessor`, built once per process.

    The processors cache their FFT window and filterbank after the first call, so reusing them
    skips that work for every later clip.
    """
    from jdrum.beat.madmom_compat import madmom

    audio, processors = madmom.audio, madmom.processors
    chains = []
    for frame_size, num_bands in zip(FRAME_SIZES, BANDS_PER_OCTAVE, strict=True):
        chains.append(
            processors.SequentialProcessor(
                (
                    audio.signal.FramedSignalProcessor(frame_size=frame_size, fps=FPS),
                    _stft,
                    audio.spectrogram.FilteredSpectrogramProcessor(
                        num_bands=num_bands, fmin=30, fmax=17000, norm_filters=True
                    ),
                    audio.spectrogram.LogarithmicSpectrogramProcessor(mul=1, add=1),
                    audio.spectrogram.SpectrogramDifferenceProcessor(
                        diff_ratio=0.5, positive_diffs=True, stack_diffs=np.hstack
                    ),
                )
            )
        )
    signal = audio.signal.SignalProcessor(num_channels=1, sample_rate=SAMPLE_RATE)
    return signal, tuple(chains)


def _stft(frames):
    """madmom's `ShortTimeFourierTransformProcessor()` on a float signal with one batched FFT.

    madmom (without pyfftw) calls `scipy.fftpack.fft` once per frame, over half of the
    feature time; this is the same complex64 STFT object (the Hann-windowed frames' first
    frame_size / 2 bins) from one `np.fft.rfft` over all frames.
    """
    from jdrum.beat.madmom_compat import madmom

    if np.issubdtype(frames.signal.dtype, np.integer):
        raise TypeError("expected a float signal (madmom scales integer signals' windows)")
    frame_size = frames.frame_size
    window = np.hanning(frame_size)
    frames_TxN = np.stack([frames[i] for i in range(len(frames))]) if len(frames) else None
    if frames_TxN is None:
        frames_TxN = np.zeros((0, frame_size), np.float32)
    spectrum = np.fft.rfft(frames_TxN * window, axis=1)[:, : frame_size >> 1]
    stft = np.asarray(spectrum, madmom.audio.stft.STFT_DTYPE).view(
        madmom.audio.stft.ShortTimeFourierTransform
    )
    stft.frames, stft.window, stft.fft_window = frames, window, window
    stft.fft_size, stft.circular_shift, stft.include_nyquist = frame_size, False, False
    return stft


def madmom_features(audio: np.ndarray) -> np.ndarray:
    """madmom's multi-resolution spectrogram + positive difference features of one clip.

    Args:
      audio: (L,) mono 44.1 kHz float audio; it is cast to float32 (as `dbn.downbeat_activations`
        does before calling madmom), which sets the precision of madmom's STFT.

    Returns:
      (ceil(L / 441), 314) float32 features [spec1 | diff1 | spec2 | diff2 | spec3 | diff3].
    """
    audio_L = np.asarray(audio, np.float32)
    if audio_L.ndim != 1:
        raise ValueError(f"expected mono audio of shape (L,), got {audio_L.shape}")
    signal, chains = _chains()
    signal_L = signal(audio_L)
    features_TxF = np.hstack([chain(signal_L) for chain in chains])
    return np.asarray(features_TxF, np.float32)


def batch_features(clips: Sequence[np.ndarray]) -> np.ndarray:
    """`madmom_features` of equal-length clips, stacked.

    Args:
      clips: N mono 44.1 kHz clips of the same length L (a sequence or an (N, L) array).

    Returns:
      (N, ceil(L / 441), 314) float32.
    """
    lengths = {len(clip) for clip in clips}
    if len(lengths) > 1:
        raise ValueError(f"clips must have equal lengths, got {sorted(lengths)}")
    if not lengths:
        raise ValueError("no clips given")
    return np.stack([madmom_features(clip) for clip in clips])
