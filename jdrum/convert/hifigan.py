"""The reference HiFi-GAN generator (`ckpt/vocoder/generator`) → `jdrum.models.hifigan`
variables: `hifigan_variables(state_dict, weight_norm=...)`, `hifigan_config`, and
`load_official_vocoder(path)` as (generator config, variables).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdrum import torch_io
from jdrum.checkpoint import check_fits
from jdrum.models import hifigan


def _hifigan_layout(state_dict: Mapping[str, Any]) -> tuple[int, int]:
    """(number of upsampling stages, ResBlocks per stage) of a reference generator state_dict."""

    def count(prefix):
        indices = {key[len(prefix) :].split(".")[0] for key in state_dict if key.startswith(prefix)}
        return 1 + max((int(i) for i in indices if i.isdigit()), default=-1)

    stages, blocks = count("ups."), count("resblocks.")
    if not stages or blocks % stages:
        raise ValueError(
            f"HiFi-GAN state_dict: {stages} upsampling stages and {blocks} resblocks do not make"
            " a generator"
        )
    return stages, blocks // stages


def _hifigan_convs(state_dict: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], bool]]:
    """Every convolution of the reference generator → (flax params path, is transposed)."""
    stages, per_stage = _hifigan_layout(state_dict)
    convs = {"conv_pre": (("conv_pre",), False), "conv_post": (("conv_post",), False)}
    for i in range(stages):
        convs[f"ups.{i}"] = ((f"ups_{i}",), True)
    for j in range(stages * per_stage):
        prefix = f"resblocks.{j}."
        layers = {key[len(prefix) :].split(".")[1] for key in state_dict if key.startswith(prefix)}
        for m in sorted(layers, key=lambda s: (not s.isdigit(), s)):
            for side in ("convs1", "convs2"):
                convs[f"{prefix}{side}.{m}"] = ((f"resblocks_{j}", f"{side}_{m}"), False)
    return convs


def _hifigan_weight(key: str, value: Any, transposed: bool) -> np.ndarray:
    """A PyTorch weight / weight_v (Conv1d (out, in, k), ConvTranspose1d (in, out, k)) → (k, in,
    out); both layouts reach the same flax layout by different transpositions."""
    array = np.asarray(value, np.float32)
    if array.ndim != 3:
        raise ValueError(f"{key}: expected a 1-D convolution weight, got shape {array.shape}")
    return array.transpose(2, 0, 1) if transposed else array.transpose(2, 1, 0)


def _hifigan_gain(key: str, value: Any, transposed: bool) -> np.ndarray:
    """weight_g (C, 1, 1) → g (1, 1, out) for Conv1d, (1, in, 1) for ConvTranspose1d."""
    array = np.asarray(value, np.float32)
    if array.ndim != 3 or array.shape[1:] != (1, 1):
        raise ValueError(f"{key}: expected a weight-norm gain (C, 1, 1), got shape {array.shape}")
    return array.reshape(1, -1, 1) if transposed else array.reshape(1, 1, -1)


def hifigan_variables(
    state_dict: Mapping[str, Any], *, weight_norm: bool
) -> dict[str, dict[str, Any]]:
    """Converts a reference `hifi_gan.models.Generator` state_dict (PyTorch names and layouts).

    Either form of the state_dict is read: weight-normalised (`conv_pre.weight_g`,
    `conv_pre.weight_v`, `ups.0.weight_v`, `resblocks.3.convs1.1.weight_g`, ..., as in the
    official `generator` file) or folded (`*.weight`, after `remove_weight_norm`); biases are
    `*.bias` in both.

    Args:
      state_dict: name → array (NumPy or anything `np.asarray` takes).
      weight_norm: return `Generator(weight_norm=True)` parameters (v, g, bias; for training)
        instead of folded kernels (inference). A weight-normalised state_dict is folded as
        PyTorch folds it; a folded one gets v = kernel and g = ‖kernel‖ (the same function).

    Returns:
      `{"params": ...}` for `jdrum.models.hifigan.Generator.apply`, NumPy float32 leaves.

    Raises:
      ValueError: listing unknown and missing keys, or naming an entry of the wrong shape.
    """
    convs = _hifigan_convs(state_dict)
    normed = any(key.endswith((".weight_g", ".weight_v")) for key in state_dict)
    names = ("weight_g", "weight_v", "bias") if normed else ("weight", "bias")
    expected = [f"{conv}.{name}" for conv in convs for name in names]
    torch_io.check_keys(
        f"HiFi-GAN generator state_dict ({'weight-norm' if normed else 'folded'} form)",
        list(state_dict),
        expected,
    )
    params: dict[str, Any] = {}
    for conv, (path, transposed) in convs.items():
        node = params
        for part in path:
            node = node.setdefault(part, {})
        bias = np.asarray(state_dict[f"{conv}.bias"], np.float32)
        if bias.ndim != 1:
            raise ValueError(f"{conv}.bias: expected a vector, got shape {bias.shape}")
        node["bias"] = bias
        if normed:
            v = _hifigan_weight(f"{conv}.weight_v", state_dict[f"{conv}.weight_v"], transposed)
            g = _hifigan_gain(f"{conv}.weight_g", state_dict[f"{conv}.weight_g"], transposed)
            if g.size != v.shape[1 if transposed else 2]:
                raise ValueError(f"{conv}.weight_g: {g.size} gains for a weight {v.shape}")
        else:
            v = _hifigan_weight(f"{conv}.weight", state_dict[f"{conv}.weight"], transposed)
            axes = (0, 2) if transposed else (0, 1)
            g = np.sqrt(np.sum(np.square(v, dtype=np.float64), axis=axes, keepdims=True))
            g = g.astype(np.float32)
        if weight_norm:
            node["v"], node["g"] = v, g
        else:
            node["kernel"] = np.asarray(hifigan.fold_kernel(v, g), np.float32) if normed else v
    return {"params": params}


def hifigan_config(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """`Generator` keyword arguments of a reference generator state_dict.

    Widths, kernel sizes and the stage count come from the arrays; the upsampling rates are
    kernel / 2 and the ResBlock dilations (1, 3, 5) — what every HiFi-GAN V1/V2/V3 config uses
    (the state_dict does not record strides or dilations).
    """
    convs = _hifigan_convs(state_dict)
    stages, per_stage = _hifigan_layout(state_dict)

    def weight_shape(conv):
        key = f"{conv}.weight_v" if f"{conv}.weight_v" in state_dict else f"{conv}.weight"
        if key not in state_dict:
            raise ValueError(f"HiFi-GAN state_dict: no weight for {conv}")
        return np.shape(state_dict[key])

    kernels = [int(weight_shape(f"ups.{i}")[2]) for i in range(stages)]
    num_dilations = sum(1 for c in convs if c.startswith("resblocks.0.convs1."))
    return {
        "upsample_initial_channel": int(weight_shape("conv_pre")[0]),
        "upsample_rates": tuple(k // 2 for k in kernels),
        "upsample_kernel_sizes": tuple(kernels),
        "resblock_kernel_sizes": tuple(
            int(weight_shape(f"resblocks.{j}.convs1.0")[2]) for j in range(per_stage)
        ),
        "resblock_dilations": ((1, 3, 5)[:num_dilations],) * per_stage,
        "n_mels": int(weight_shape("conv_pre")[1]),
    }


def _check_hifigan(config: Mapping[str, Any], variables, weight_norm: bool) -> None:
    """Compares converted generator parameters with what `Generator(**config).init` creates."""
    model = hifigan.Generator(**config, weight_norm=weight_norm)
    mel = jax.ShapeDtypeStruct((1, model.n_mels, 2), jnp.float32)
    expected = jax.eval_shape(model.init, jax.random.key(0), mel)
    check_fits(f"HiFi-GAN variables for {config}", expected, variables)


def load_official_vocoder(
    path: str | os.PathLike, *, weight_norm: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reads the official vocoder file (`ckpt/vocoder/generator`: a dict with the single key
    `generator`; torch needed) or an `.npz` holding the state_dict under `generator/` or
    `param/` (the reference fixture's layout; no torch needed).

    Returns:
      (config, variables): `jdrum.models.hifigan.Generator(**config, weight_norm=weight_norm)`
      with `variables` reproduces the reference generator.
    """
    checkpoint = torch_io.read_checkpoint(path)
    for key in ("generator", "param"):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            state_dict = checkpoint[key]
            break
    else:
        raise ValueError(
            f"{path}: no 'generator' (or 'param') entry; top level: {list(checkpoint)}"
        )
    variables = hifigan_variables(state_dict, weight_norm=weight_norm)
    config = hifigan_config(state_dict)
    _check_hifigan(config, variables, weight_norm)
    return config, variables
