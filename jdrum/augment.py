"""Train-time timbre augmentation of a stem: random EQ, compression, room and level.

The drumless stems of a training set come from a few sources (one synthesiser, one mixing
chain), so a model trained on them can lean on timbres that a user's song does not have. Each
stage below stands for one way that real recordings differ from the training data, and draws
its settings at random for every clip (`TimbreAugment` holds the ranges; each stage fires with
its own probability):

* EQ: a low shelf, a high shelf and one peaking band (RBJ Audio-EQ-Cookbook biquads, run as
  second-order sections): the tonal balance of other instruments, microphones and mixes (boomy
  or thin, dull or bright, a honky or scooped midrange).
* Compression: a feed-forward compressor on the smoothed level: the flattened dynamics of
  mastered and broadcast audio. Attack and release are approximated without a per-sample loop:
  the level is the larger of two one-pole smoothings of the signal's power (`scipy.signal.lfilter`),
  one with the attack time constant and one with the release time constant. On a rise the fast
  one leads, so the detector follows within the attack time; on a fall the slow one holds, so it
  decays at the release rate. Compared with a true branching detector the gain is slightly more
  conservative (the slow branch also rises, slowly, during long loud passages).
* Reverb: convolution with a synthetic room impulse response, exponentially decaying Gaussian
  noise that falls 60 dB in RT60, after an optional pre-delay, mixed with the dry signal: rooms
  and reverberant productions that a dry synthesised stem never has.
* Gain: the recording level.

The output is never clipped: when any stage leaves the peak above 1, the whole clip is scaled
down to a peak of 1, so it converts to int16 PCM (`audio.to_pcm16`) without distortion that the
augmentation did not mean to add.

    rng = np.random.default_rng(seed)
    y_L = augment.augment(x_L, rng)                      # float32, same length
    y_L = augment.augment(x_L, rng, augment.TimbreAugment(reverb_probability=0.0))

NumPy and SciPy only, on the host: a 6-s clip takes a few milliseconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import signal

from jdrum import audio

Range = tuple[float, float]
_EPS_POWER = 1e-12  # power floor before log10 (-120 dB): silence stays finite


@dataclasses.dataclass(frozen=True)
class TimbreAugment:
    """Probabilities and (low, high) ranges of the augmentation; a value is drawn uniformly in
    its range, frequencies, Q, ratio and time constants log-uniformly. A range (v, v) fixes v."""

    sample_rate: int = audio.SAMPLE_RATE
    # EQ: three biquads (gains in dB; a 0 dB band is a pass-through).
    eq_probability: float = 0.8
    low_shelf_db: Range = (-9.0, 9.0)
    low_shelf_hz: Range = (60.0, 400.0)  # corner frequency
    high_shelf_db: Range = (-9.0, 9.0)
    high_shelf_hz: Range = (2_000.0, 10_000.0)
    peak_db: Range = (-9.0, 9.0)
    peak_hz: Range = (200.0, 8_000.0)  # centre frequency
    peak_q: Range = (0.5, 4.0)
    # Compression. The threshold is relative to the clip's RMS level, so that quiet and loud
    # clips are compressed alike; the level detector measures power (dB of mean square).
    compress_probability: float = 0.5
    threshold_db: Range = (-12.0, 3.0)
    ratio: Range = (1.5, 8.0)
    attack_ms: Range = (1.0, 30.0)
    release_ms: Range = (30.0, 300.0)
    makeup_db: Range = (0.0, 6.0)
    # Reverb (wet: the convolved signal's share of the mix; the impulse response has unit energy).
    reverb_probability: float = 0.5
    rt60_s: Range = (0.2, 1.5)
    predelay_ms: Range = (0.0, 30.0)
    wet: Range = (0.1, 0.5)
    # Gain.
    gain_probability: float = 1.0
    gain_db: Range = (-6.0, 6.0)


# ------------------------------------------------------------------------------------ stages


def biquad(kind: str, gain_db: float, freq_hz: float, q: float, sample_rate: int) -> np.ndarray:
    """One RBJ-cookbook biquad as a second-order section (6,) [b0, b1, b2, 1, a1, a2].

    Args:
      kind: "low_shelf", "high_shelf" or "peak".
      gain_db: the shelf's or the band's gain.
      freq_hz: corner (shelves, at half the gain in dB) or centre frequency (peak).
      q: the band's Q (peak); for shelves the slope parameter is 1 (the steepest without a
        bump) and `q` is ignored.
      sample_rate: Hz.
    """
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * min(freq_hz, 0.45 * sample_rate) / sample_rate
    cos_w0, sin_w0 = np.cos(w0), np.sin(w0)
    if kind == "peak":
        alpha = sin_w0 / (2.0 * q)
        b = [1.0 + alpha * a, -2.0 * cos_w0, 1.0 - alpha * a]
        den = [1.0 + alpha / a, -2.0 * cos_w0, 1.0 - alpha / a]
    elif kind in ("low_shelf", "high_shelf"):
        two_sqrt_a_alpha = 2.0 * np.sqrt(a) * sin_w0 / np.sqrt(2.0)  # slope S = 1
        sign = 1.0 if kind == "low_shelf" else -1.0  # the high shelf mirrors cos(w0)
        b = [
            a * ((a + 1) - sign * (a - 1) * cos_w0 + two_sqrt_a_alpha),
            sign * 2.0 * a * ((a - 1) - sign * (a + 1) * cos_w0),
            a * ((a + 1) - sign * (a - 1) * cos_w0 - two_sqrt_a_alpha),
        ]
        den = [
            (a + 1) + sign * (a - 1) * cos_w0 + two_sqrt_a_alpha,
            -sign * 2.0 * ((a - 1) + sign * (a + 1) * cos_w0),
            (a + 1) + sign * (a - 1) * cos_w0 - two_sqrt_a_alpha,
        ]
    else:
        raise ValueError(f"unknown biquad {kind!r}: 'low_shelf', 'high_shelf' or 'peak'")
    return np.concatenate([b, den]) / den[0]


def equalize(x_L: np.ndarray, sos_Nx6: np.ndarray) -> np.ndarray:
    """`x_L` through the cascade of second-order sections `sos_Nx6` (float64)."""
    return signal.sosfilt(sos_Nx6, np.asarray(x_L, np.float64))


def _one_pole(x_L: np.ndarray, time_s: float, sample_rate: int) -> np.ndarray:
    """y[n] = (1 - c) x[n] + c y[n-1], c = exp(-1 / (time_s * sample_rate))."""
    c = np.exp(-1.0 / max(time_s * sample_rate, 1.0))
    return signal.lfilter([1.0 - c], [1.0, -c], x_L)


def compress(
    x_L: np.ndarray,
    threshold_db: float,
    ratio: float,
    attack_s: float,
    release_s: float,
    makeup_db: float,
    sample_rate: int,
) -> np.ndarray:
    """A feed-forward compressor (hard knee) on the power level in dB full scale.

    Above `threshold_db` the level rises by 1 / `ratio` dB per dB; `makeup_db` is added after.
    Attack and release: the detector is the larger of two one-pole smoothings of x² with the
    `attack_s` and `release_s` time constants (module docstring).
    """
    x_L = np.asarray(x_L, np.float64)
    power = x_L * x_L
    level = np.maximum(
        _one_pole(power, attack_s, sample_rate), _one_pole(power, release_s, sample_rate)
    )
    level_db = 10.0 * np.log10(level + _EPS_POWER)
    over_db = np.maximum(level_db - threshold_db, 0.0)
    gain_db = makeup_db - over_db * (1.0 - 1.0 / ratio)
    return x_L * 10.0 ** (gain_db / 20.0)


def room_impulse_response(
    rng: np.random.Generator, rt60_s: float, predelay_s: float, sample_rate: int
) -> np.ndarray:
    """A synthetic room: Gaussian noise decaying 60 dB over `rt60_s` (cut there), after
    `predelay_s` of silence, with unit energy."""
    n = max(int(rt60_s * sample_rate), 1)
    decay = np.exp(-np.log(1000.0) * np.arange(n) / n)  # amplitude: 1 → 1e-3 (-60 dB)
    tail = rng.standard_normal(n) * decay
    ir = np.concatenate([np.zeros(int(predelay_s * sample_rate)), tail])
    return ir / np.sqrt(np.sum(ir * ir))


def reverberate(x_L: np.ndarray, ir_K: np.ndarray, wet: float) -> np.ndarray:
    """(1 - wet) dry + wet (x * ir), cut to the input's length."""
    x_L = np.asarray(x_L, np.float64)
    convolved = signal.oaconvolve(x_L, ir_K)[: len(x_L)]
    return (1.0 - wet) * x_L + wet * convolved


def _peak_normalised(x_L: np.ndarray) -> np.ndarray:
    """Scaled down to a peak of 1 when louder (never clipped); otherwise unchanged."""
    peak = np.max(np.abs(x_L))
    return x_L / peak if peak > 1.0 else x_L


# ------------------------------------------------------------------------------------ chain


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _log_uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def augment(
    x_L: np.ndarray, rng: np.random.Generator, config: TimbreAugment = TimbreAugment()
) -> np.ndarray:
    """A random EQ → compression → reverb → gain of mono audio `x_L` (module docstring).

    Args:
      x_L: float audio in [-1, 1].
      rng: the source of every random draw; the same generator state gives the same output.
      config: probabilities and ranges.

    Returns:
      float32 audio of the same length with a peak of at most 1; silence stays silence.
    """
    c, sr = config, config.sample_rate
    # Every setting is drawn, used or not, so that each stage's draws do not depend on whether
    # an earlier stage fired; only the room's noise (drawn last) depends on the settings.
    probabilities = [
        c.eq_probability,
        c.compress_probability,
        c.reverb_probability,
        c.gain_probability,
    ]
    fire = rng.random(len(probabilities)) < probabilities
    low_db, low_hz = _uniform(rng, c.low_shelf_db), _log_uniform(rng, c.low_shelf_hz)
    low = biquad("low_shelf", low_db, low_hz, 1.0, sr)
    high_db, high_hz = _uniform(rng, c.high_shelf_db), _log_uniform(rng, c.high_shelf_hz)
    high = biquad("high_shelf", high_db, high_hz, 1.0, sr)
    peak_db, peak_hz = _uniform(rng, c.peak_db), _log_uniform(rng, c.peak_hz)
    peak = biquad("peak", peak_db, peak_hz, _log_uniform(rng, c.peak_q), sr)
    threshold_db = _uniform(rng, c.threshold_db)
    ratio = _log_uniform(rng, c.ratio)
    attack_s = _log_uniform(rng, c.attack_ms) / 1000.0
    release_s = _log_uniform(rng, c.release_ms) / 1000.0
    makeup_db = _uniform(rng, c.makeup_db)
    rt60_s = _log_uniform(rng, c.rt60_s)
    predelay_s = _uniform(rng, c.predelay_ms) / 1000.0
    wet = _uniform(rng, c.wet)
    gain_db = _uniform(rng, c.gain_db)

    y_L = np.asarray(x_L, np.float64)
    if not y_L.size:
        return y_L.astype(np.float32)
    if fire[0]:
        y_L = equalize(y_L, np.stack([low, high, peak]))
    if fire[1]:
        rms_db = 10.0 * np.log10(np.mean(y_L * y_L) + _EPS_POWER)
        y_L = compress(y_L, rms_db + threshold_db, ratio, attack_s, release_s, makeup_db, sr)
    if fire[2]:
        y_L = reverberate(y_L, room_impulse_response(rng, rt60_s, predelay_s, sr), wet)
    if fire[3]:
        y_L = y_L * 10.0 ** (gain_db / 20.0)
    return _peak_normalised(y_L).astype(np.float32)


def pipeline_seed(seed: int, shard=None) -> int:
    """The seed of a data pipeline's augmentation draws on this process: one per `seed` and
    grain shard (`shard.shard_index`; None: a single process), so that every process draws its
    own."""
    index = 0 if shard is None else shard.shard_index
    return int(np.random.SeedSequence((seed, index)).generate_state(1)[0])


def augment_pcm16(
    pcm_L: np.ndarray, rng: np.random.Generator, config: TimbreAugment = TimbreAugment()
) -> np.ndarray:
    """`augment` of int16 PCM, as int16 PCM (the clip records' format)."""
    return audio.to_pcm16(augment(audio.from_pcm16(np.asarray(pcm_L, np.int16)), rng, config))
