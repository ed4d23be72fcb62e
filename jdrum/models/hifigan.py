"""HiFi-GAN V1 (REFERENCE §6): the mel → waveform generator and its two discriminators.

Layout: the generator takes a log10 mel (B, n_mels, T) in NCT, like the reference and like
`jdrum.audio.log_mel`, and returns the waveform (B, T·256) in [-1, 1]. Inside, everything runs
NTC (batch, time, channels), the layout of flax convolutions.

Parameters of every convolution (`Conv`):

    plain (inference)   kernel (k, in/groups, out), bias (out,)
    weight_norm=True    v (k, in/groups, out), g, bias: kernel = g · v / ‖v‖ with the norm over
                        every axis where g has size 1. g is (1, 1, out) — one gain per output
                        channel — for a convolution, and (1, in, 1) — one per INPUT channel —
                        for a transposed convolution (PyTorch's `weight_norm` takes the norm per
                        slice of dim 0 of its (in, out, k) ConvTranspose1d weight).

`fold_weight_norm(params)` turns the second form into the first (what the reference's
`remove_weight_norm` does). The MSD's first scale uses spectral norm instead: plain `kernel`
parameters divided by their largest singular value, estimated by one power iteration per
training call with persistent vectors `u` (out,) and `v` (in/groups · k,) in the mutable
collection `"spectral"` (what `torch.nn.utils.spectral_norm` keeps as buffers).

Generator tree: conv_pre, ups_{0..3}, resblocks_{0..11}/{convs1_j, convs2_j} (j < 3), conv_post —
the PyTorch names with "." replaced by "_". Paper size: 13,926,017 parameters folded, 13,936,130
with weight-norm gains (REFERENCE §8.3).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jdrum.models import layers
from jdrum.models.layers import Conv, fold_kernel

SPECTRAL = layers.SPECTRAL  # the MSD's spectral-norm vectors (see `layers.Conv`)
LRELU_SLOPE = 0.1  # HiFi-GAN's LeakyReLU slope; the final one before conv_post is 0.01
FINAL_SLOPE = 0.01


def fold_weight_norm(params: Any) -> Any:
    """Weight-norm params → plain params: every {v, g, ...} dict becomes {kernel, ...}.

    Works on any tree made by these modules (generator or discriminator, NumPy or jax leaves);
    dicts without `v`/`g` are copied unchanged.
    """
    if not isinstance(params, dict) and not hasattr(params, "items"):
        return params
    if "v" in params and "g" in params:
        rest = {k: val for k, val in params.items() if k not in ("v", "g")}
        return {"kernel": fold_kernel(jnp.asarray(params["v"]), jnp.asarray(params["g"])), **rest}
    return {key: fold_weight_norm(value) for key, value in params.items()}


# ------------------------------------------------------------------------------ generator


class ResBlock1(nn.Module):
    """for d in dilations: x += conv(k, 1)(lrelu(conv(k, d)(lrelu(x)))); LeakyReLU 0.1."""

    kernel_size: int
    dilations: Sequence[int] = (1, 3, 5)
    norm: str = "none"
    init_std: float | None = None
    dtype: Any = jnp.float32
    precision: jax.lax.PrecisionLike = None

    @nn.compact
    def __call__(self, x_BxTxC: jax.Array) -> jax.Array:
        width = x_BxTxC.shape[-1]
        init = None if self.init_std is None else nn.initializers.normal(self.init_std)
        for j, dilation in enumerate(self.dilations):

            def conv(name, d):
                return Conv(
                    width,
                    self.kernel_size,
                    dilation=d,
                    norm=self.norm,
                    kernel_init=init,
                    dtype=self.dtype,
                    precision=self.precision,
                    name=name,
                )

            y = conv(f"convs1_{j}", dilation)(nn.leaky_relu(x_BxTxC, LRELU_SLOPE))
            y = conv(f"convs2_{j}", 1)(nn.leaky_relu(y, LRELU_SLOPE))
            x_BxTxC = x_BxTxC + y
        return x_BxTxC


class Generator(nn.Module):
    """HiFi-GAN V1 generator: log10 mel (B, n_mels, T) → waveform (B, T·∏upsample_rates).

    conv_pre (k7) → per stage: LeakyReLU 0.1 → transposed conv → mean of the ResBlock1s →
    LeakyReLU 0.01 → conv_post (k7, one channel) → tanh. Fully convolutional: any T ≥ 1 works.

    Attributes:
      upsample_initial_channel: width after conv_pre, halved per stage (512 in V1).
      upsample_rates, upsample_kernel_sizes: the transposed convolutions (8, 8, 2, 2 / 16, 16,
        4, 4 in V1: 256 samples per mel frame, the mel hop).
      resblock_kernel_sizes, resblock_dilations: the ResBlock1s of every stage.
      n_mels: input mel bins.
      weight_norm: weight-normalised parameters (v, g; training) instead of folded kernels.
      init_std: N(0, init_std²) initialisation of the upsampling, ResBlock and conv_post
        kernels (`v` under weight norm), what the reference's `init_weights` intends; None
        (default): PyTorch's default initialisation everywhere, what the reference actually
        trains with — its `init_weights` runs after `weight_norm` and so changes nothing
        (jik876/hifi-gan#145), and every weight-norm gain starts at ‖v‖ ≈ 0.577.
      dtype: compute dtype; parameters and the output stay float32.

    When "intermediates" is mutable, the outputs (NTC) of conv_pre, ups_i and resblocks_j are
    sown as `conv_pre_out`, `ups_i_out`, `resblocks_j_out` (the reference fixture's hooks).
    """

    upsample_initial_channel: int = 512
    upsample_rates: Sequence[int] = (8, 8, 2, 2)
    upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4)
    resblock_kernel_sizes: Sequence[int] = (3, 7, 11)
    resblock_dilations: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    n_mels: int = 80
    weight_norm: bool = False
    init_std: float | None = None
    dtype: Any = jnp.float32
    precision: jax.lax.PrecisionLike = None

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)

    @nn.compact
    def __call__(self, mel_BxMxT: jax.Array) -> jax.Array:
        if mel_BxMxT.ndim != 3 or mel_BxMxT.shape[1] != self.n_mels:
            raise ValueError(f"expected a mel (B, {self.n_mels}, T), got {mel_BxMxT.shape}")
        if self.upsample_initial_channel < 2 ** len(self.upsample_rates):
            raise ValueError(
                f"upsample_initial_channel {self.upsample_initial_channel} is too small: it is"
                f" halved {len(self.upsample_rates)} times"
            )
        norm = "weight" if self.weight_norm else "none"
        common = dict(norm=norm, dtype=self.dtype, precision=self.precision)
        small = None if self.init_std is None else nn.initializers.normal(self.init_std)
        x_BxTxC = Conv(self.upsample_initial_channel, 7, name="conv_pre", **common)(
            mel_BxMxT.transpose(0, 2, 1)
        )
        self.sow("intermediates", "conv_pre_out", x_BxTxC)
        for i, (rate, kernel) in enumerate(
            zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True)
        ):
            width = self.upsample_initial_channel // 2 ** (i + 1)
            up = Conv(
                width, kernel, rate, transpose=True, kernel_init=small, name=f"ups_{i}", **common
            )
            x_BxTxC = up(nn.leaky_relu(x_BxTxC, LRELU_SLOPE))
            self.sow("intermediates", f"ups_{i}_out", x_BxTxC)
            total = None
            for j, (k, dilations) in enumerate(
                zip(self.resblock_kernel_sizes, self.resblock_dilations, strict=True)
            ):
                index = i * len(self.resblock_kernel_sizes) + j
                block = ResBlock1(
                    k, tuple(dilations), init_std=self.init_std, name=f"resblocks_{index}", **common
                )
                out = block(x_BxTxC)
                self.sow("intermediates", f"resblocks_{index}_out", out)
                total = out if total is None else total + out
            x_BxTxC = total / len(self.resblock_kernel_sizes)
        x_BxTxC = nn.leaky_relu(x_BxTxC, FINAL_SLOPE)
        x_BxTxC = Conv(1, 7, kernel_init=small, name="conv_post", **common)(x_BxTxC)
        return jnp.tanh(x_BxTxC[..., 0]).astype(jnp.float32)


# -------------------------------------------------------------------------- discriminators

Outputs = tuple[list[jax.Array], list[list[jax.Array]]]


def _scaled(channels: Sequence[int], divisor: int) -> list[int]:
    return [max(1, c // divisor) for c in channels]


class PeriodDiscriminator(nn.Module):
    """One MPD sub-discriminator: the waveform folded into (T/p, p), (5, 1) convolutions.

    The (5, 1) 2-D convolutions of the reference act on each of the p columns separately, so
    they run here as 1-D convolutions over B·p sequences (same parameter count; kernel (5, in,
    out) = the torch (out, in, 5, 1) weight transposed). Returns the score (B, T'·p) and the
    feature maps (B, p, T', C) of every layer.
    """

    period: int
    channels: Sequence[int] = (32, 128, 512, 1024, 1024)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, wave_BxL: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        batch, length = wave_BxL.shape
        p = self.period
        if length % p:
            wave_BxL = jnp.pad(wave_BxL, [(0, 0), (0, p - length % p)], mode="reflect")
        x = wave_BxL.reshape(batch, -1, p).transpose(0, 2, 1).reshape(batch * p, -1, 1)
        fmaps = []
        for i, width in enumerate(self.channels):
            stride = 3 if i < len(self.channels) - 1 else 1
            conv = Conv(
                width, 5, stride, padding=2, norm="weight", dtype=self.dtype, name=f"convs_{i}"
            )
            x = nn.leaky_relu(conv(x), LRELU_SLOPE)
            fmaps.append(x.reshape(batch, p, *x.shape[1:]))
        x = Conv(1, 3, padding=1, norm="weight", dtype=self.dtype, name="conv_post")(x)
        fmaps.append(x.reshape(batch, p, *x.shape[1:]))
        score = x.reshape(batch, p, -1).transpose(0, 2, 1).reshape(batch, -1)
        return score.astype(jnp.float32), fmaps


class MultiPeriodDiscriminator(nn.Module):
    """MPD: PeriodDiscriminators for periods 2, 3, 5, 7, 11 (REFERENCE §6.2).

    `width_divisor` divides every channel count (1: the paper's 8,218,433 parameters per
    period, plus 2,721 weight-norm gains).
    """

    periods: Sequence[int] = (2, 3, 5, 7, 11)
    width_divisor: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, wave_BxL: jax.Array) -> Outputs:
        channels = _scaled((32, 128, 512, 1024, 1024), self.width_divisor)
        results = [
            PeriodDiscriminator(p, channels, self.dtype, name=f"discriminators_{i}")(wave_BxL)
            for i, p in enumerate(self.periods)
        ]
        return [r[0] for r in results], [r[1] for r in results]


class ScaleDiscriminator(nn.Module):
    """One MSD sub-discriminator: strided grouped 1-D convolutions on the raw or pooled wave."""

    norm: str = "weight"
    width_divisor: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, wave_BxL: jax.Array, train: bool = False):
        channels = _scaled((128, 128, 256, 512, 1024, 1024, 1024), self.width_divisor)
        groups = [max(1, g // self.width_divisor) for g in (1, 4, 16, 16, 16, 16, 1)]
        kernels = (15, 41, 41, 41, 41, 41, 5)
        strides = (1, 2, 2, 4, 4, 1, 1)
        x = wave_BxL[..., None]
        fmaps = []
        for i, (width, group, k, stride) in enumerate(
            zip(channels, groups, kernels, strides, strict=True)
        ):
            conv = Conv(
                width,
                k,
                stride,
                groups=group,
                padding=(k - 1) // 2,
                norm=self.norm,
                dtype=self.dtype,
                name=f"convs_{i}",
            )
            x = nn.leaky_relu(conv(x, train), LRELU_SLOPE)
            fmaps.append(x)
        x = Conv(1, 3, padding=1, norm=self.norm, dtype=self.dtype, name="conv_post")(x, train)
        fmaps.append(x)
        return x[..., 0].astype(jnp.float32), fmaps


def _avg_pool(x_BxL: jax.Array) -> jax.Array:
    """PyTorch AvgPool1d(4, 2, padding=2), zero padding counted: length L/2 + 1."""
    x = jnp.pad(x_BxL, [(0, 0), (2, 2)])
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 4), (1, 2), "VALID") / 4.0


class MultiScaleDiscriminator(nn.Module):
    """MSD: ScaleDiscriminators on the wave, pooled once, pooled twice (`scales` = 3 in the
    reference); the first uses spectral norm (needs the "spectral" collection; `train=True`
    with it mutable runs one power iteration), the others weight norm (REFERENCE §6.2).
    `width_divisor` divides every channel count and group count (1: the paper's 9,870,209
    parameters per scale, plus 4,097 weight-norm gains on the weight-normed ones)."""

    width_divisor: int = 1
    scales: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, wave_BxL: jax.Array, train: bool = False) -> Outputs:
        scores, fmaps = [], []
        for i in range(self.scales):
            norm = "spectral" if i == 0 else "weight"
            if i:
                wave_BxL = _avg_pool(wave_BxL)
            disc = ScaleDiscriminator(
                norm, self.width_divisor, self.dtype, name=f"discriminators_{i}"
            )
            score, fmap = disc(wave_BxL, train)
            scores.append(score)
            fmaps.append(fmap)
        return scores, fmaps


class Discriminator(nn.Module):
    """MPD and MSD together: wave (B, L) → (score maps, lists of feature maps), one per
    sub-discriminator (periods first, then scales: 8 in the reference).

    Every score map and feature map has the batch axis first, so the outputs of a batch that
    concatenates real and generated audio split along axis 0.
    """

    width_divisor: int = 1
    periods: Sequence[int] = (2, 3, 5, 7, 11)
    scales: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, wave_BxL: jax.Array, train: bool = False) -> Outputs:
        mpd = MultiPeriodDiscriminator(self.periods, self.width_divisor, self.dtype, name="mpd")
        msd = MultiScaleDiscriminator(self.width_divisor, self.scales, self.dtype, name="msd")
        scores_p, fmaps_p = mpd(wave_BxL)
        scores_s, fmaps_s = msd(wave_BxL, train)
        return scores_p + scores_s, fmaps_p + fmaps_s


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """The sizes of a `Generator` as a run's `config.model` gives them (`frozen.from_mapping`)."""

    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    n_mels: int = 80
    init_std: float | None = None  # 0 or None: PyTorch's default initialisation (`Generator`)
    dtype: str = "float32"  # "float32" or "bfloat16"

    def make(self, weight_norm: bool = True) -> Generator:
        """The generator, weight-normalised (training, checkpoints) or folded (inference)."""
        return Generator(
            upsample_initial_channel=self.upsample_initial_channel,
            upsample_rates=tuple(self.upsample_rates),
            upsample_kernel_sizes=tuple(self.upsample_kernel_sizes),
            resblock_kernel_sizes=tuple(self.resblock_kernel_sizes),
            resblock_dilations=tuple(tuple(d) for d in self.resblock_dilations),
            n_mels=self.n_mels,
            weight_norm=weight_norm,
            init_std=self.init_std or None,
            dtype=DTYPES[self.dtype],
        )


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """The sizes of a `Discriminator` as a run's `config.discriminator` gives them."""

    width_divisor: int = 1
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    scales: int = 3
    dtype: str = "float32"

    def make(self) -> Discriminator:
        return Discriminator(
            width_divisor=self.width_divisor,
            periods=tuple(self.periods),
            scales=self.scales,
            dtype=DTYPES[self.dtype],
        )
