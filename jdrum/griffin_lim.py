"""Griffin-Lim inversion of log10 mels with the front end's exact geometry (`griffin_lim`).

The vocoder of a run without a trained HiFi-GAN (`jdrum.inference.vocode`), and the baseline
the HiFi-GAN trainer scores itself against. `fast_griffin_lim` is librosa's fast Griffin-Lim
as one jitted JAX program; `mel_to_magnitude` solves mel → STFT magnitude.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jdrum import audio

GRIFFIN_LIM_ITERS = 32  # librosa's default; fast Griffin-Lim (momentum 0.99), random phase seed 0
NNLS_ITERS = 30  # FISTA steps of the mel -> STFT-magnitude least squares


def batched(mel) -> tuple[np.ndarray, bool]:
    mel = np.asarray(mel, np.float32)
    if mel.ndim == 2:
        return mel[None], True
    if mel.ndim != 3:
        raise ValueError(f"expected a mel (B, n_mels, T) or (n_mels, T), got shape {mel.shape}")
    return mel, False


def griffin_lim(
    mel_log10,
    n_iter: int = GRIFFIN_LIM_ITERS,
    config: audio.SpectrogramConfig = audio.DEFAULT_SPECTROGRAM,
    seed: int = 0,
) -> np.ndarray:
    """Griffin-Lim inversion of log10 mels with the front end's exact geometry.

    10^mel → STFT magnitude by non-negative least squares against our mel filterbank
    (`mel_to_magnitude`; what `librosa.feature.inverse.mel_to_stft` does with its own basis and
    its much slower L-BFGS solver), then `fast_griffin_lim` (n_fft 1024, hop 256, periodic
    Hann 1024, `n_iter` iterations) without centring, cut so that frame j is centred on sample
    256·j + 128 like `audio.log_mel`'s frames.

    Args:
      mel_log10: (B, n_mels, T) or (n_mels, T) log10 mel.
      n_iter: Griffin-Lim iterations (default 32).
      config: the spectrogram geometry of the mel.
      seed: random initial phase.

    Returns:
      (B, T·hop) or (T·hop,) float32 audio.
    """
    mel_BxMxT, single = batched(mel_log10)
    if mel_BxMxT.shape[1] != config.n_mels:
        raise ValueError(f"expected {config.n_mels} mel bins, got {mel_BxMxT.shape[1]}")
    basis = audio.mel_filters(config).astype(np.float32)
    hop, frames = config.hop_length, mel_BxMxT.shape[2]
    length = frames * hop
    out = np.zeros((mel_BxMxT.shape[0], length), np.float32)
    if frames == 0:
        return out[0] if single else out
    for b, mel in enumerate(mel_BxMxT):
        magnitude = mel_to_magnitude(basis, np.power(10.0, mel, dtype=np.float32))
        wave = fast_griffin_lim(magnitude, n_iter, hop, seed)
        out[b] = wave[config.pad : config.pad + length]
    return out[0] if single else out


def fast_griffin_lim(magnitude_FxT, n_iter: int, hop_length: int, seed: int = 0) -> np.ndarray:
    """`librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop_length, window="hann",
    center=False, random_state=seed)` (momentum 0.99) as one jitted JAX program.

    The same algorithm, the same initial phase and float32 arithmetic; on a 20 s signal it
    matches librosa to 3e-5 relative RMS and runs ~3x faster on 2 CPU cores (librosa calls
    NumPy's single-threaded FFT twice per iteration). Each new T compiles once.

    Args:
      magnitude_FxT: (n_fft / 2 + 1, T) STFT magnitude; n_fft must be a multiple of the hop.
      n_iter, hop_length, seed: as librosa's.

    Returns:
      (n_fft + hop · (T − 1),) float32 audio.
    """
    magnitude = np.asarray(magnitude_FxT, np.float32)
    n_fft = 2 * (magnitude.shape[0] - 1)
    if n_fft % hop_length:
        raise ValueError(f"n_fft {n_fft} is not a multiple of the hop {hop_length}")
    phase = np.random.RandomState(seed=seed).random(size=magnitude.shape)  # librosa's draw
    return np.asarray(_fast_griffin_lim(magnitude, phase.astype(np.float32), n_iter, hop_length))


def _overlap_add(frames_TxN, hop: int):
    """Frames (T, N) hop samples apart, summed into a (N + hop · (T − 1),) signal."""
    count, size = frames_TxN.shape
    parts = frames_TxN.reshape(count, size // hop, hop)
    out = jnp.zeros((count + size // hop - 1, hop), frames_TxN.dtype)
    for k in range(size // hop):
        out = out.at[k : k + count].add(parts[:, k])
    return out.reshape(-1)


def _frames(x_L, size: int, hop: int, count: int):
    """The (count, size) frames of x_L, hop samples apart (the inverse of `_overlap_add`)."""
    blocks = x_L.reshape(-1, hop)
    return jnp.concatenate([blocks[k : k + count] for k in range(size // hop)], axis=1)


@functools.partial(jax.jit, static_argnames=("n_iter", "hop"))
def _fast_griffin_lim(magnitude_FxT, phase_FxT, n_iter: int, hop: int, momentum: float = 0.99):
    count = magnitude_FxT.shape[1]
    size = 2 * (magnitude_FxT.shape[0] - 1)
    window = 0.5 - 0.5 * jnp.cos(2 * jnp.pi * jnp.arange(size, dtype=jnp.float32) / size)
    window_sum = _overlap_add(jnp.broadcast_to(window**2, (count, size)), hop)
    tiny = np.finfo(np.float32).tiny
    window_sum = jnp.where(window_sum > tiny, window_sum, 1.0)  # librosa: divide where > tiny

    def istft(spectrum_FxT):
        frames = jnp.fft.irfft(spectrum_FxT.T, n=size, axis=-1) * window[None]
        return _overlap_add(frames, hop) / window_sum

    def stft(x_L):
        return jnp.fft.rfft(_frames(x_L, size, hop, count) * window[None], axis=-1).T

    def body(_, carry):
        angles, previous = carry
        rebuilt = stft(istft(angles))
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        return angles / (jnp.abs(angles) + tiny) * magnitude_FxT, rebuilt

    angles = magnitude_FxT * jnp.exp(2j * jnp.pi * phase_FxT).astype(jnp.complex64)
    angles, _ = jax.lax.fori_loop(0, n_iter, body, (angles, jnp.zeros_like(angles)))
    return istft(angles)


def mel_to_magnitude(basis_MxF: np.ndarray, mel_MxT: np.ndarray, iters: int = NNLS_ITERS):
    """argmin_{S >= 0} ||basis S - mel||² for all frames at once: FISTA (accelerated projected
    gradient) from the clipped least-squares solution, `iters` steps.

    librosa's `nnls` solves the same problem from the same start with L-BFGS-B; on the drum
    stems of synthstems/demo 30 steps reach a 4000x smaller residual (1.2e-4 against 0.56 over
    12 s) about 10x faster, within 3 % of librosa's solution.

    Returns:
      (F, T) float32 non-negative magnitudes.
    """
    basis = np.asarray(basis_MxF, np.float32)
    mel = np.asarray(mel_MxT, np.float32)
    x = np.clip(np.linalg.pinv(basis) @ mel, 0.0, None)
    y, t = x, 1.0
    step = 1.0 / np.linalg.norm(basis, 2) ** 2  # 1 / Lipschitz constant of the gradient
    for _ in range(iters):
        x_next = np.maximum(y - step * (basis.T @ (basis @ y - mel)), 0.0)
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = x_next + ((t - 1.0) / t_next) * (x_next - x)
        x, t = x_next, t_next
    return x.astype(np.float32)
