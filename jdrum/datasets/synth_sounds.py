"""The sound sources of `jdrum.datasets.synth`: a synthesised drum kit and the bass, chord and
lead voices, each drawn from the generator it is given (NumPy and SciPy only)."""

from __future__ import annotations

import functools

import numpy as np
import scipy.signal

KIT_GAIN = {
    "kick": 1.0,
    "snare": 0.75,
    "hat": 0.22,
    "ohat": 0.22,
    "ride": 0.28,
    "crash": 0.4,
    "tom_hi": 0.7,
    "tom_mid": 0.7,
    "tom_lo": 0.75,
}


_TABLE_SIZE = 4096


def _band(x: np.ndarray, sr: int, lo: float, hi: float = np.inf) -> np.ndarray:
    """Band-passes `x` to [lo, hi] Hz with 24 dB/octave Butterworth-like slopes (zero phase).

    Gentle slopes, not a brick wall: real drums keep some energy across the whole spectrum.
    """
    spectrum = np.fft.rfft(x)
    freqs = np.maximum(np.fft.rfftfreq(len(x), 1.0 / sr), 1e-3)
    gain = 1.0 / np.sqrt(1.0 + (lo / freqs) ** 8)
    if np.isfinite(hi):
        gain = gain / np.sqrt(1.0 + (freqs / hi) ** 8)
    return np.fft.irfft(spectrum * gain, len(x))


def room(x: np.ndarray, rng, sr: int) -> np.ndarray:
    """Adds a small room: exponentially decaying noise as impulse response, mixed in low."""
    rt60 = rng.uniform(0.4, 0.9)
    t = np.arange(int(rt60 * sr)) / sr
    response = _band(rng.standard_normal(len(t)), sr, 150.0, 9000.0) * np.exp(-6.9 * t / rt60)
    response *= rng.uniform(0.25, 0.4) / np.sqrt(np.sum(response**2))
    return x + scipy.signal.oaconvolve(x, response)[: len(x)]


def _noise(rng, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    x = _band(rng.standard_normal(n), sr, lo, hi)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _cymbal(rng, sr, seconds, decay, lo, metal, scale) -> np.ndarray:
    """Square-wave partials of a TR-808 cymbal plus noise, high-passed, decaying."""
    t = np.arange(int(seconds * sr)) / sr
    partials = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0]) * scale
    squares = np.sign(np.sin(2 * np.pi * partials[:, None] * t)).sum(axis=0)
    x = _band(metal * squares / 3 + (1 - metal) * rng.standard_normal(len(t)), sr, lo)
    return x * np.minimum(1.0, t / 0.002) * np.exp(-t / decay)


def drum_kit(rng, sr: int) -> dict[str, np.ndarray]:
    """One sample per drum, tuned at random, normalised to peak `KIT_GAIN`.

    Kicks decay with a time constant of 0.05-0.15 s and toms 0.1-0.2 s, as a tight studio kit.
    (Up to synthstems 1.3.0 they rang for 0.2-0.4 s and 0.25 s: most frames then sat under a
    kick tail, most drum codes carried a loud low band, and the LMs' takes droned; issue 16.)
    """

    def time(seconds):
        return np.arange(int(seconds * sr)) / sr

    kit = {}
    t = time(0.6)
    f_end, f_start = rng.uniform(45, 60), rng.uniform(110, 170)
    freq = f_end + (f_start - f_end) * np.exp(-t / rng.uniform(0.03, 0.06))
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / rng.uniform(0.05, 0.15))
    kit["kick"] = body + 0.3 * _noise(rng, len(t), sr, 1500, 8000) * np.exp(-t / 0.003)

    t = time(0.4)
    f0 = rng.uniform(170, 230)
    tone = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 1.6 * f0 * t)
    rattle = _noise(rng, len(t), sr, 1200, 9000) * np.exp(-t / rng.uniform(0.08, 0.16))
    kit["snare"] = 0.6 * tone * np.exp(-t / 0.05) + 0.5 * rattle

    scale = rng.uniform(1.6, 2.4)
    kit["hat"] = _cymbal(rng, sr, 0.2, rng.uniform(0.025, 0.045), 7000, 0.5, scale)
    kit["ohat"] = _cymbal(rng, sr, 0.9, rng.uniform(0.2, 0.35), 6500, 0.5, scale)
    kit["crash"] = _cymbal(rng, sr, 2.5, rng.uniform(0.6, 1.0), 3500, 0.3, scale * 0.8)
    t = time(1.6)
    bell = np.sin(2 * np.pi * rng.uniform(500, 800) * t) * np.exp(-t / 0.4)
    kit["ride"] = _cymbal(rng, sr, 1.6, rng.uniform(0.6, 1.0), 4500, 0.8, scale * 1.5) + bell

    t = time(0.7)
    base = rng.uniform(85, 115)
    tom_decay = rng.uniform(0.1, 0.2)
    for name, ratio in (("tom_lo", 1.0), ("tom_mid", 1.35), ("tom_hi", 1.8)):
        freq = base * ratio * (1 + 0.5 * np.exp(-t / 0.04))
        tone = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / tom_decay)
        kit[name] = tone + 0.15 * _noise(rng, len(t), sr, 500, 6000) * np.exp(-t / 0.03)
    return {k: KIT_GAIN[k] * x / np.abs(x).max() for k, x in kit.items()}


@functools.cache
def _wavetable(shape: str, harmonics: int) -> np.ndarray:
    """One band-limited cycle of a waveform, peak 1."""
    k = np.arange(1, harmonics + 1)
    amp = {
        "sine": (k == 1) * 1.0,
        "saw": 1.0 / k,
        "square": (k % 2) / k,
        "tri": (k % 2) * (-1.0) ** ((k - 1) // 2) / k**2,
    }[shape]
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    # Summed by NumPy rather than a BLAS product, so no BLAS build or thread count changes it.
    table = (amp[:, None] * np.sin(2 * np.pi * k[:, None] * phase)).sum(axis=0)
    table = table / np.abs(table).max()
    table.setflags(write=False)
    return table


def _osc(shape: str, freq: float, t: np.ndarray, sr: int, phase: float = 0.0) -> np.ndarray:
    """Wavetable oscillator with as many harmonics as fit below Nyquist (at most 24)."""
    table = _wavetable(shape, max(1, min(24, int(0.45 * sr / freq))))
    index = ((freq * t + phase) * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)
    return table[index]


def _envelope(t, duration, attack, decay, release) -> np.ndarray:
    """Linear attack, exponential decay, linear release after `duration` seconds."""
    gate = np.clip((duration + release - t) / release, 0.0, 1.0)
    return np.minimum(1.0, t / attack) * np.exp(-t / decay) * gate


def _midi_hz(midi) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def bass_voice(note, duration, sr, rng) -> np.ndarray:
    t = np.arange(int((duration + 0.03) * sr)) / sr
    f = _midi_hz(note[2])
    brightness = 0.2 + 0.6 * np.exp(-t / 0.06)  # a decaying low-pass, as a mix of partials
    x = _osc("sine", f, t, sr) + brightness * _osc("saw", f, t, sr, rng.random())
    return x * _envelope(t, duration, 0.004, 0.8, 0.03)


def chord_voice(note, duration, sr, rng) -> np.ndarray:
    """Detuned saws: a slow pad (`note[4]`) or a short stab."""
    pad = note[4]
    release = 0.15 if pad else 0.05
    t = np.arange(int((duration + release) * sr)) / sr
    cents = (-8.0, 0.0, 8.0) if pad else (-5.0, 5.0)
    f = _midi_hz(note[2])
    x = sum(_osc("saw", f * 2 ** (c / 1200), t, sr, rng.random()) for c in cents) / len(cents)
    if pad:
        return x * _envelope(t, duration, rng.uniform(0.08, 0.2), 4.0, release)
    return x * _envelope(t, duration, 0.005, 0.4, release)


def lead_voice(note, duration, sr, rng) -> np.ndarray:
    del rng  # the lead has no random detail
    t = np.arange(int((duration + 0.04) * sr)) / sr
    return _osc(note[4], _midi_hz(note[2]), t, sr) * _envelope(t, duration, 0.004, 0.35, 0.04)
