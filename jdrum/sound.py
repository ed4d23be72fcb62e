"""Sound measures of drum stems (issue 16): how close generated or reconstructed drums sound to
the real ones, beside the beat measures of `jdrum.beat.metrics`. NumPy, SciPy and librosa
only; mono float audio at 44.1 kHz in, floats out. `sound_metrics` gives all of them
(`SOUND_NAMES`) for a stem against the real drums of its song.

Paired (a stem against the real stem it stands for, e.g. real drums → VQ-VAE → vocoder):

* `stft_distance`: multi-resolution STFT distance, the mean over FFT sizes 512, 1024 and 2048
  (hop n_fft / 4, Hann) of log-magnitude L1 (natural log, magnitudes floored at 1e-5) plus
  spectral convergence ‖|S_real| − |S|‖_F / ‖|S_real|‖_F;
* `onset_f1`: F-measure (mir_eval, 50 ms) of librosa's onsets against the real stem's.

Unpaired (a stem on its own, next to the same figure for the real drums):

* `drone_db`: the low drone, the power below `DRONE_HZ` that stays for more than
  `DRONE_SECONDS`, relative to the stem's mean power, in dB. Each bin of the power spectrogram
  (n_fft 4096, hop 1024) between 20 Hz and `DRONE_HZ` is replaced by its minimum over every
  window of that length around a frame: a kick and its tail fall below their level within the
  window, a constant band does not. On the demo's held-out song the real drums give -37 dB and
  the tiny LM's takes -24 to -33 dB; a 60 Hz sine at -40 dBFS added to the real drums gives -27.
  (The same share over every band was dominated by the cymbals' long decays, which made real
  drums look more droning than the takes.)
* `drone_excess_db`: a stem's `drone_db` minus that of the real drums of its song: how much
  louder its drone is than the real thing. Real drums differ by tens of dB from song to song
  (a slow song's ringing kicks overlap, a dry one has none), so the excess, not the level, is
  what says a take drones; "within 2x of the real drums' power" is an excess <= +3 dB.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import mir_eval
import numpy as np
import scipy.ndimage

from jdrum import audio

STFT_SIZES = (512, 1024, 2048)
LOG_FLOOR = 1e-5
ONSET_WINDOW_S = 0.05
DRONE_SECONDS = 1.0
DRONE_HZ = 150.0  # the observed drone: the five lowest of 80 mel bands
SILENT_DB = -200.0
DRONE_FFT = 4096
DRONE_HOP = 1024


def _mono(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal (L,), got shape {x.shape}")
    return x


def _paired(x, reference) -> tuple[np.ndarray, np.ndarray]:
    x, reference = _mono(x), _mono(reference)
    n = min(len(x), len(reference))
    return x[:n], reference[:n]


def _magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    return np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann"))


def stft_distance(x, reference, sizes: Sequence[int] = STFT_SIZES) -> dict[str, float]:
    """{"log_l1", "spectral_convergence", "stft_distance" (their sum)}, each the mean over
    `sizes`, of `x` against `reference` (cut to the shorter of the two)."""
    x, reference = _paired(x, reference)
    log_l1, convergence = [], []
    for n_fft in sizes:
        s = _magnitude(x, n_fft, n_fft // 4)
        r = _magnitude(reference, n_fft, n_fft // 4)
        log_l1.append(np.mean(np.abs(np.log(np.maximum(r, LOG_FLOOR) / np.maximum(s, LOG_FLOOR)))))
        convergence.append(np.linalg.norm(r - s) / max(np.linalg.norm(r), 1e-12))
    result = {"log_l1": float(np.mean(log_l1)), "spectral_convergence": float(np.mean(convergence))}
    result["stft_distance"] = result["log_l1"] + result["spectral_convergence"]
    return result


def onsets(x) -> np.ndarray:
    """Onset times (s) of a stem: librosa's onset detector at its defaults (hop 512)."""
    return librosa.onset.onset_detect(
        y=_mono(x), sr=audio.SAMPLE_RATE, units="time", backtrack=False
    )


def onset_f1(x, reference, window: float = ONSET_WINDOW_S) -> float:
    """F-measure of the onsets of `x` against those of `reference` (0 if either has none)."""
    x, reference = _paired(x, reference)
    estimated, truth = onsets(x), onsets(reference)
    if len(estimated) == 0 or len(truth) == 0:
        return 0.0
    return float(mir_eval.onset.f_measure(truth, estimated, window=window)[0])


def drone_db(x, seconds: float = DRONE_SECONDS, max_hz: float = DRONE_HZ) -> float:
    """The low drone of `x` in dB relative to its mean power (module docstring); -200 for a
    stem shorter than `seconds` or silent."""
    x = _mono(x)
    power = _magnitude(x, DRONE_FFT, DRONE_HOP) ** 2
    frames = max(int(round(seconds * audio.SAMPLE_RATE / DRONE_HOP)), 1)
    total = float(power.sum(axis=0).mean()) if power.size else 0.0
    if power.shape[1] < frames or total <= 0.0:
        return SILENT_DB
    freqs = librosa.fft_frequencies(sr=audio.SAMPLE_RATE, n_fft=DRONE_FFT)
    low = power[(freqs > 20.0) & (freqs < max_hz)]
    stationary = scipy.ndimage.minimum_filter1d(low, size=frames, axis=1, mode="nearest")
    return float(max(10 * np.log10(max(stationary.sum(axis=0).mean(), 1e-30) / total), SILENT_DB))


SOUND_NAMES = ("stft_distance", "onset_f1", "drone_db", "drone_excess_db")


def sound_metrics(x, real) -> dict[str, float]:
    """{name: value} for every name of `SOUND_NAMES`: stem `x` against the real drums `real`
    of its song (`drone_db` is that of `x` alone, `drone_excess_db` its excess over the real
    drums')."""
    drone = drone_db(x)
    return {
        "stft_distance": stft_distance(x, real)["stft_distance"],
        "onset_f1": onset_f1(x, real),
        "drone_db": drone,
        "drone_excess_db": drone - drone_db(real),
    }
