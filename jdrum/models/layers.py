"""Small shared blocks with PyTorch semantics (REFERENCE §2.1, §11).

Everything here works on NTC arrays (batch, time, channels), the layout of flax convolutions.
`Conv` is the one convolution of the models: PyTorch's `Conv1d` / `ConvTranspose1d` layout,
padding and default initialisation, optionally weight- or spectral-normalised, computing in a
given dtype.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any

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


# Kaiming-uniform with a=√5 is U(−1/√fan_in, 1/√fan_in), i.e. variance fan_in⁻¹/3: PyTorch's
# default `Conv1d` weight init on a (k, in/groups, out) kernel; for a `ConvTranspose1d` PyTorch's
# fan_in is out·k (its weight is (in, out, k)).
torch_default_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
torch_transposed_kernel_init = nn.initializers.variance_scaling(
    1.0 / 3.0, "fan_in", "uniform", in_axis=-1, out_axis=-2
)


SPECTRAL = "spectral"  # the collection of the spectral-norm power-iteration vectors
NORMS = ("none", "weight", "spectral")


def _gain_axes(g_shape) -> tuple[int, ...]:
    return tuple(i for i, n in enumerate(g_shape) if n == 1)


def fold_kernel(v: jax.Array, g: jax.Array) -> jax.Array:
    """g · v / ‖v‖, the norm over every axis where g has size 1 (PyTorch `_weight_norm`)."""
    norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=_gain_axes(g.shape), keepdims=True))
    return v * (g / norm)


def _transposed_taps(kernel_size: int, stride: int, padding: int):
    """Polyphase index table of a transposed convolution (see `Conv`).

    Output sample q·stride + r is Σ_m x[q + a_r − m] · w[b_r + m·stride] with
    r + padding = a_r·stride + b_r. Returns (index (D, stride) into the k taps, k meaning a zero
    tap, and the lowest input offset d_min); the polyphase kernel is w[index] with input offsets
    d_min … d_min + D − 1.
    """
    taps = -(-kernel_size // stride)
    a = [(r + padding) // stride for r in range(stride)]
    b = [(r + padding) % stride for r in range(stride)]
    d_min = min(a) - (taps - 1)
    width = max(a) - d_min + 1
    index = np.full((width, stride), kernel_size, np.int32)
    for r in range(stride):
        for m in range(taps):
            j = b[r] + m * stride
            if j < kernel_size:
                index[a[r] - m - d_min, r] = j
    return index, d_min


class Conv(nn.Module):
    """1-D convolution or transposed convolution with PyTorch semantics, NTC in and out.

    Convolution (PyTorch `Conv1d`): stride, dilation, groups, `padding` zeros on both sides
    (None: dilation·(k − 1)/2, "same" for stride 1 and odd k); output length
    ⌊(T + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1.

    Transposed (PyTorch `ConvTranspose1d(stride u, kernel k, padding p)` with p = (k − u)/2, the
    HiFi-GAN geometry; `padding` None means that): output length T·u. Computed as one stride-1
    convolution with u·out output channels (polyphase), which does no multiply by inserted
    zeros; the parameters keep the plain layout: kernel[j, i, o] = torch weight[i, o, j].

    Attributes:
      features: output channels.
      kernel_size, stride, dilation, groups, padding: as in PyTorch.
      transpose: a transposed convolution (groups and dilation must be 1).
      norm: "none" (kernel), "weight" (v, g) or "spectral" (kernel / σ(kernel)).
      kernel_init: initialiser of `kernel` / `v`; None: PyTorch's default.
      dtype: compute dtype (parameters stay float32).
    """

    features: int
    kernel_size: int
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    padding: int | None = None
    transpose: bool = False
    norm: str = "none"
    kernel_init: nn.initializers.Initializer | None = None
    dtype: Any = jnp.float32
    precision: jax.lax.PrecisionLike = None

    def _kernel(self, shape, train: bool) -> jax.Array:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        init = self.kernel_init or (
            torch_transposed_kernel_init if self.transpose else torch_default_kernel_init
        )
        if self.norm == "weight":
            v = self.param("v", init, shape)
            g_shape = (1, shape[1], 1) if self.transpose else (1, 1, shape[2])
            g = self.param(
                "g",
                lambda _, s: jnp.sqrt(jnp.sum(jnp.square(v), axis=_gain_axes(s), keepdims=True)),
                g_shape,
            )
            return fold_kernel(v, g)
        kernel = self.param("kernel", init, shape)
        if self.norm == "spectral":
            return self._spectral(kernel, train)
        return kernel

    def _spectral(self, kernel_KxIxO: jax.Array, train: bool) -> jax.Array:
        """kernel / σ, σ ≈ the top singular value of the (out, in·k) matrix (PyTorch layout)."""
        w_OxN = kernel_KxIxO.transpose(2, 1, 0).reshape(kernel_KxIxO.shape[2], -1)

        def unit(key, n):
            x = jax.random.normal(key, (n,), jnp.float32)
            return x / jnp.maximum(jnp.linalg.norm(x), 1e-12)

        u_var = self.variable(SPECTRAL, "u", lambda: unit(self.make_rng("params"), w_OxN.shape[0]))
        v_var = self.variable(SPECTRAL, "v", lambda: unit(self.make_rng("params"), w_OxN.shape[1]))
        u, v = u_var.value, v_var.value
        if train and not self.is_initializing():
            w_sg = jax.lax.stop_gradient(w_OxN)
            v = w_sg.T @ u
            v = v / jnp.maximum(jnp.linalg.norm(v), 1e-12)
            u = w_sg @ v
            u = u / jnp.maximum(jnp.linalg.norm(u), 1e-12)
            u_var.value, v_var.value = u, v
        sigma = u @ (w_OxN @ v)
        return kernel_KxIxO / sigma

    @nn.compact
    def __call__(self, x_BxTxI: jax.Array, train: bool = False) -> jax.Array:
        num_inputs = x_BxTxI.shape[-1]
        if num_inputs % self.groups or self.features % self.groups:
            raise ValueError(
                f"channels {num_inputs} -> {self.features} not divisible by {self.groups} groups"
            )
        k = self.kernel_size
        if self.transpose:
            if self.groups != 1 or self.dilation != 1:
                raise ValueError("transposed convolutions here have groups = dilation = 1")
            if (k - self.stride) % 2 or k < self.stride:
                raise ValueError(f"transposed kernel {k} and stride {self.stride}: k − u odd")
            padding = (k - self.stride) // 2 if self.padding is None else self.padding
            if padding != (k - self.stride) // 2:
                raise ValueError("transposed convolutions support padding (k − stride) / 2 only")
            # PyTorch's fan_in for ConvTranspose1d is weight.size(1)·k = out·k.
            fan_in = self.features * k
        else:
            padding = self.dilation * (k - 1) // 2 if self.padding is None else self.padding
            fan_in = num_inputs // self.groups * k
        shape = (k, num_inputs // self.groups, self.features)
        kernel_KxIxO = self._kernel(shape, train).astype(self.dtype)
        bias_O = self.param("bias", torch_default_bias_init(fan_in), (self.features,))
        x_BxTxI = x_BxTxI.astype(self.dtype)
        if self.transpose:
            y_BxTxO = self._transposed(x_BxTxI, kernel_KxIxO, padding)
        else:
            y_BxTxO = jax.lax.conv_general_dilated(
                x_BxTxI,
                kernel_KxIxO,
                window_strides=(self.stride,),
                padding=[(padding, padding)],
                rhs_dilation=(self.dilation,),
                dimension_numbers=("NWC", "WIO", "NWC"),
                feature_group_count=self.groups,
                precision=self.precision,
            )
        return y_BxTxO + bias_O.astype(self.dtype).reshape(1, 1, -1)

    def _transposed(self, x_BxTxI, kernel_KxIxO, padding: int) -> jax.Array:
        u = self.stride
        index_DxU, d_min = _transposed_taps(self.kernel_size, u, padding)
        width = index_DxU.shape[0]
        zero = jnp.zeros((1, *kernel_KxIxO.shape[1:]), kernel_KxIxO.dtype)
        taps_DxUxIxO = jnp.concatenate([kernel_KxIxO, zero], axis=0)[index_DxU]
        batch, length, num_inputs = x_BxTxI.shape
        poly_DxIxUO = taps_DxUxIxO.transpose(0, 2, 1, 3).reshape(width, num_inputs, -1)
        # Correlation with input offsets d_min … d_min + width − 1; lax takes negative padding.
        y_BxTxUO = jax.lax.conv_general_dilated(
            x_BxTxI,
            poly_DxIxUO,
            window_strides=(1,),
            padding=[(-d_min, d_min + width - 1)],
            dimension_numbers=("NWC", "WIO", "NWC"),
            precision=self.precision,
        )
        return y_BxTxUO.reshape(batch, length * u, self.features)


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
