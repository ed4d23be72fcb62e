"""A Vocos-style generator (Siuzdak 2023): ConvNeXt blocks at the mel frame rate, then an
inverse STFT, instead of HiFi-GAN's stack of upsampling convolutions.

The contract is HiFi-GAN's (`jdrum.models.hifigan.Generator`): a log10 mel (B, n_mels, T) in
NCT, as `jdrum.audio.log_mel` makes it, becomes float32 audio (B, T·hop_length), frame j
centred on sample hop·j + hop/2 like the front end's frames. The audio is not squashed into
[-1, 1] (there is no tanh).

    embed     Conv1d(n_mels → dim, k 7, zero "same" padding), LayerNorm
    blocks    num_layers × ConvNeXtBlock (one `nn.scan`; parameters stacked on axis 0):
              x + γ ⊙ Dense(GELU(Dense(LayerNorm(depthwise Conv1d k 7 (x)))))
              with the layer scale γ (dim,) starting at 1/num_layers
    norm      LayerNorm
    head      Dense(dim → n_fft + 2) = [log-magnitude m; phase p] per frame, F = n_fft/2 + 1
              bins each: spectrum exp(min(m, ln 100)) · (cos p + i sin p), then `istft`;
              with `magnitude_prior`, m is a correction added to `prior_log_magnitude` (a
              guess of the STFT magnitude from the mel; configs/vocos.py:tiny uses it)

Every LayerNorm has ε 1e-6; kernels start N(0, 0.02²) truncated at two standard deviations,
biases at zero. Paper size (dim 512, MLP 1536, 8 blocks, 80 mels, n_fft 1024):
13,459,970 parameters (`VocosConfig.num_params`); Vocos' own mel model reads 100 bands, 71,680
more embedding weights, its published 13.5 M.

`istft` is the inverse of the front end's STFT (periodic Hann, n_fft, hop, no centring) with
"same" padding: the frames are overlap-added, divided by the overlap-added squared window, and
(n_fft − hop)/2 samples are cut from both ends, so T frames give exactly T·hop samples. On a
spectrum that `audio.log_mel`'s STFT made of reflect-padded audio it gives the audio back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdrum import audio
from jdrum.models.hifigan import DTYPES

LAYER_NORM_EPS = 1e-6
INIT_STD = 0.02  # kernels ~ N(0, 0.02²) truncated at ±2σ (ConvNeXt's initialisation)
LOG_FLOOR = 1e-5  # the front end's mel floor, also the prior magnitude's
MAX_MAGNITUDE = 100.0  # the head's magnitudes are clipped here (exp of the log-magnitude)


def periodic_hann(n: int) -> np.ndarray:
    """The front end's window: 0.5 − 0.5 cos(2πk/n), k < n (`jdrum.audio.log_mel`)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def _overlap_add(frames_BxTxN: jax.Array, hop: int) -> jax.Array:
    """Frames hop samples apart summed into (B, N + hop·(T − 1)); hop must divide N."""
    batch, count, size = frames_BxTxN.shape
    ratio = size // hop
    parts_BxTxRxH = frames_BxTxN.reshape(batch, count, ratio, hop)
    # Part k of frame j lands in block j + k of the output.
    total = sum(
        jnp.pad(parts_BxTxRxH[:, :, k], [(0, 0), (k, ratio - 1 - k), (0, 0)]) for k in range(ratio)
    )
    return total.reshape(batch, (count + ratio - 1) * hop)


def check_geometry(n_fft: int, hop_length: int) -> None:
    """Raises ValueError unless hop divides n_fft and (n_fft − hop) is even ("same" padding)."""
    if hop_length < 1 or n_fft % hop_length or (n_fft - hop_length) % 2:
        raise ValueError(
            f"istft needs the hop ({hop_length}) to divide n_fft ({n_fft}) with n_fft − hop even"
        )


def istft(spectrum_BxTxF: jax.Array, n_fft: int, hop_length: int) -> jax.Array:
    """Inverse STFT with "same" padding: (B, T, n_fft/2 + 1) complex → (B, T·hop) float32.

    irfft of every frame, times the periodic Hann window, overlap-added hop samples apart,
    divided by the overlap-added squared window and cut by (n_fft − hop)/2 at both ends:
    frame j is centred on sample hop·j + hop/2. Pure jnp, for any T ≥ 1 (each T traces once).

    For Hann at hop n_fft/4 the kept part of the squared-window sum is 1.5 mid-signal and never
    below 0.75 at the ends (0.73 for T = 1), so every output sample is reconstructed.
    """
    check_geometry(n_fft, hop_length)
    batch, count, bins = spectrum_BxTxF.shape
    if bins != n_fft // 2 + 1:
        raise ValueError(f"expected {n_fft // 2 + 1} frequency bins for n_fft {n_fft}, got {bins}")
    window_1x1xN = jnp.asarray(periodic_hann(n_fft)).reshape(1, 1, n_fft)
    frames_BxTxN = jnp.fft.irfft(spectrum_BxTxF, n=n_fft, axis=-1) * window_1x1xN
    signal_BxL = _overlap_add(frames_BxTxN.astype(jnp.float32), hop_length)
    envelope_1xL = _overlap_add(jnp.broadcast_to(window_1x1xN**2, (1, count, n_fft)), hop_length)
    pad = (n_fft - hop_length) // 2
    length = count * hop_length
    return signal_BxL[:, pad : pad + length] / envelope_1xL[:, pad : pad + length]


def spectrum_to_audio(
    log_magnitude_BxTxF: jax.Array, phase_BxTxF: jax.Array, n_fft: int, hop_length: int
) -> jax.Array:
    """The ISTFT head after its linear layer: magnitude exp(min(m, ln 100)), phase p → audio."""
    magnitude = jnp.exp(
        jnp.minimum(log_magnitude_BxTxF.astype(jnp.float32), math.log(MAX_MAGNITUDE))
    )
    phase = phase_BxTxF.astype(jnp.float32)
    spectrum = jax.lax.complex(magnitude * jnp.cos(phase), magnitude * jnp.sin(phase))
    return istft(spectrum, n_fft, hop_length)


def prior_filters(n_mels: int, n_fft: int) -> np.ndarray:
    """(n_mels, n_fft/2 + 1) map from mel magnitudes to a first guess of the STFT magnitude:
    every band's mean level (its mel value over the area of its filter, which is what a flat
    spectrum under the filter gives), averaged over the bands that cover a bin with the
    filters' weights. Non-negative, unlike the pseudo-inverse; bins no filter covers get 0."""
    config = audio.SpectrogramConfig(n_fft=n_fft, n_mels=n_mels)
    weights_MxF = audio.mel_filters(config)
    cover_F = weights_MxF.sum(axis=0)
    level_MxF = weights_MxF / weights_MxF.sum(axis=1, keepdims=True)
    return (level_MxF / np.where(cover_F > 0, cover_F, np.inf)).astype(np.float32)


def prior_log_magnitude(mel_BxMxT: jax.Array, n_fft: int) -> jax.Array:
    """(B, T, n_fft/2 + 1) natural-log STFT magnitude guessed from a log10 mel
    (`prior_filters`, floored at 1e-5): what the head's log-magnitude is added to when the
    generator has a `magnitude_prior` (FreeV, Lv et al. 2024, starts from the mel filters'
    pseudo-inverse the same way)."""
    filters_MxF = jnp.asarray(prior_filters(mel_BxMxT.shape[1], n_fft))
    magnitude_BxTxF = jnp.einsum(
        "bmt,mf->btf",
        jnp.power(10.0, mel_BxMxT.astype(jnp.float32)),
        filters_MxF,
        precision=jax.lax.Precision.HIGHEST,
    )
    return jnp.log(jnp.maximum(magnitude_BxTxF, LOG_FLOOR))


def _kernel_init():
    return nn.initializers.truncated_normal(INIT_STD)


class ConvNeXtBlock(nn.Module):
    """x + γ ⊙ pointwise MLP(LayerNorm(depthwise conv(x))), NTC; a scan body (x, None)."""

    intermediate: int
    kernel_size: int = 7
    layer_scale: float = 1.0
    dtype: Any = jnp.float32
    precision: jax.lax.PrecisionLike = None

    @nn.compact
    def __call__(self, x_BxTxD: jax.Array, _=None) -> tuple[jax.Array, None]:
        dim = x_BxTxD.shape[-1]
        # Biases start at zero (flax's default).
        dense = dict(kernel_init=_kernel_init(), dtype=self.dtype, precision=self.precision)
        y = nn.Conv(
            dim,
            (self.kernel_size,),
            padding=[((self.kernel_size - 1) // 2, self.kernel_size // 2)],
            feature_group_count=dim,
            name="dwconv",
            **dense,
        )(x_BxTxD)
        y = nn.LayerNorm(LAYER_NORM_EPS, dtype=self.dtype, name="norm")(y)
        y = nn.Dense(self.intermediate, name="pwconv1", **dense)(y)
        y = nn.gelu(y, approximate=False)
        y = nn.Dense(dim, name="pwconv2", **dense)(y)
        gamma = self.param("gamma", nn.initializers.constant(self.layer_scale), (dim,))
        return x_BxTxD + gamma.astype(y.dtype).reshape(1, 1, dim) * y, None


class Vocos(nn.Module):
    """Vocos-style generator: log10 mel (B, n_mels, T) → float32 audio (B, T·hop_length).

    Attributes:
      n_mels: input mel bins.
      dim: ConvNeXt width.
      intermediate: the blocks' pointwise MLP width.
      num_layers: ConvNeXt blocks.
      kernel_size: the embedding's and the depthwise convolutions' kernel.
      n_fft, hop_length: the ISTFT head's frame size (also its periodic Hann window) and hop;
        hop_length is the samples per mel frame.
      layer_scale: initial γ of every block; 0: 1/num_layers.
      dtype: compute dtype of the backbone; parameters and the ISTFT stay float32.
    """

    n_mels: int = 80
    dim: int = 512
    intermediate: int = 1536
    num_layers: int = 8
    kernel_size: int = 7
    n_fft: int = 1024
    hop_length: int = 256
    layer_scale: float = 0.0
    magnitude_prior: bool = False
    dtype: Any = jnp.float32
    precision: jax.lax.PrecisionLike = None

    @nn.compact
    def __call__(self, mel_BxMxT: jax.Array, spectrum: bool = False):
        """Audio (B, T·hop_length); with `spectrum`, the head's (log-magnitude, phase), each
        (B, T, n_fft/2 + 1), before the inverse STFT instead."""
        if mel_BxMxT.ndim != 3 or mel_BxMxT.shape[1] != self.n_mels:
            raise ValueError(f"expected a mel (B, {self.n_mels}, T), got {mel_BxMxT.shape}")
        check_geometry(self.n_fft, self.hop_length)
        common = dict(kernel_init=_kernel_init(), dtype=self.dtype, precision=self.precision)
        k = self.kernel_size
        x_BxTxD = nn.Conv(self.dim, (k,), padding=[((k - 1) // 2, k // 2)], name="embed", **common)(
            mel_BxMxT.transpose(0, 2, 1)
        )
        x_BxTxD = nn.LayerNorm(LAYER_NORM_EPS, dtype=self.dtype, name="norm")(x_BxTxD)
        blocks = nn.scan(
            ConvNeXtBlock,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            length=self.num_layers,
        )(
            self.intermediate,
            k,
            self.layer_scale or 1.0 / self.num_layers,
            self.dtype,
            self.precision,
            name="blocks",
        )
        x_BxTxD, _ = blocks(x_BxTxD, None)
        x_BxTxD = nn.LayerNorm(LAYER_NORM_EPS, dtype=self.dtype, name="final_norm")(x_BxTxD)
        head_BxTx2F = nn.Dense(self.n_fft + 2, name="head", **common)(x_BxTxD)
        bins = self.n_fft // 2 + 1
        log_magnitude_BxTxF = head_BxTx2F[..., :bins]
        if self.magnitude_prior:
            log_magnitude_BxTxF = log_magnitude_BxTxF + prior_log_magnitude(mel_BxMxT, self.n_fft)
        phase_BxTxF = head_BxTx2F[..., bins:]
        if spectrum:
            return log_magnitude_BxTxF, phase_BxTxF
        return spectrum_to_audio(log_magnitude_BxTxF, phase_BxTxF, self.n_fft, self.hop_length)


@dataclasses.dataclass(frozen=True)
class VocosConfig:
    """The sizes of a `Vocos` as a run's `config.model` gives them (`frozen.from_mapping`);
    defaults: the paper's mel model (with 80 bands)."""

    n_mels: int = 80
    dim: int = 512
    intermediate: int = 1536
    num_layers: int = 8
    kernel_size: int = 7
    n_fft: int = 1024
    hop_length: int = 256
    layer_scale: float = 0.0  # 0: 1/num_layers
    magnitude_prior: bool = False  # the head's log-magnitude adds to `prior_log_magnitude`
    dtype: str = "float32"  # "float32" or "bfloat16"

    def make(self, weight_norm: bool = False) -> Vocos:
        """The generator. `weight_norm` is taken for `GeneratorConfig.make`'s signature: Vocos
        has no weight norm, so training and inference use the same parameters."""
        del weight_norm
        return Vocos(**{**dataclasses.asdict(self), "dtype": DTYPES[self.dtype]})

    @property
    def num_params(self) -> int:
        """Parameters of the generator, counted from the sizes."""
        d, h, k = self.dim, self.intermediate, self.kernel_size
        embed = self.n_mels * k * d + d + 2 * d  # conv, then LayerNorm scale and bias
        block = (k * d + d) + 2 * d + (d * h + h) + (h * d + d) + d  # dw, norm, MLP, γ
        head = 2 * d + d * (self.n_fft + 2) + self.n_fft + 2  # final LayerNorm, Dense
        return embed + self.num_layers * block + head
