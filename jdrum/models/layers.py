"""Small shared blocks with PyTorch semantics (REFERENCE §2.1, §11).

Everything here works on NTC arrays (batch, time, channels), the layout of flax convolutions.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LEAKY_SLOPE = 0.01  # PyTorch's nn.LeakyReLU default, used everywhere in the reference
GROUP_NORM_EPS = 1e-5  # PyTorch's default (flax's is 1e-6)


def leaky_relu(x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(x, negative_slope=LEAKY_SLOPE)


# Two-pass variance, as PyTorch computes it, rather than flax's E[x²] − E[x]².
GroupNorm = functools.partial(nn.GroupNorm, epsilon=GROUP_NORM_EPS, use_fast_variance=False)


def torch_default_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """U(−1/√fan_in, 1/√fan_in): PyTorch's default `Conv1d`/`Linear` bias init."""
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, minval=-bound, maxval=bound
    )


# Kaiming-uniform with a=√5 is U(−1/√fan_in, 1/√fan_in), i.e. variance fan_in⁻¹/3.
torch_default_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class Conv1d(nn.Module):
    """Stride-1 1-D convolution with explicit "same" padding, like PyTorch's `nn.Conv1d`.

    Padding is dilation·(kernel_size − 1)/2 frames on both sides (odd kernel sizes).

    Parameters: `kernel` (kernel_size, in/groups, features) — PyTorch's weight (out, in/groups, k)
    transposed — and `bias` (features,). PyTorch default initialisation.
    """

    features: int
    kernel_size: int = 3
    dilation: int = 1
    groups: int = 1
    precision: jax.lax.PrecisionLike = None

    @nn.compact
    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        num_inputs = x_BxTxI.shape[-1]
        if num_inputs % self.groups or self.features % self.groups:
            raise ValueError(
                f"channels {num_inputs} -> {self.features} not divisible by {self.groups} groups"
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"same padding needs an odd kernel size, got {self.kernel_size}")
        fan_in = num_inputs // self.groups * self.kernel_size
        kernel_KxIxO = self.param(
            "kernel",
            torch_default_kernel_init,
            (self.kernel_size, num_inputs // self.groups, self.features),
        )
        bias_O = self.param("bias", torch_default_bias_init(fan_in), (self.features,))
        pad = self.dilation * (self.kernel_size - 1) // 2
        y_BxTxO = jax.lax.conv_general_dilated(
            x_BxTxI,
            kernel_KxIxO,
            window_strides=(1,),
            padding=[(pad, pad)],
            rhs_dilation=(self.dilation,),
            dimension_numbers=("NWC", "WIO", "NWC"),
            feature_group_count=self.groups,
            precision=self.precision,
        )
        return y_BxTxO + bias_O.reshape(1, 1, -1)


def resampled_length(length: int, scale: float) -> int:
    """Output length of PyTorch's `F.interpolate(scale_factor=scale)`: floor(length · scale)."""
    return math.floor(length * scale)


def resample_nearest(x_BxTxC: jax.Array, scale: float) -> jax.Array:
    """Nearest-neighbour resampling along time with PyTorch's `F.interpolate` semantics.

    out[i] = in[floor(i / scale)]: ×0.5 keeps the even frames, ×2 repeats every frame twice.
    """
    length = x_BxTxC.shape[1]
    out_length = resampled_length(length, scale)
    ratio = Fraction(scale).limit_denominator(1 << 16)
    if ratio == 1:
        return x_BxTxC
    if ratio.numerator == 1:  # integer downsampling: a strided slice
        return x_BxTxC[:, : out_length * ratio.denominator : ratio.denominator]
    if ratio.denominator == 1:  # integer upsampling: repeat
        return jnp.repeat(x_BxTxC, ratio.numerator, axis=1, total_repeat_length=out_length)
    # PyTorch computes the source index in float32 from 1/scale.
    index = np.floor(np.arange(out_length, dtype=np.float32) * np.float32(1.0 / scale))
    index = np.minimum(index.astype(np.int64), length - 1)
    return x_BxTxC[:, index]
