"""The reference VQ-VAE (`vq1_target.pkl`, `vq1_others.pkl`) → `jdrum.models.vqvae.VQVAE`
variables: `vqvae_variables(state_dict)`, `vqvae_config`, and `load_official_vqvae(path)` /
`vqvae_from_checkpoint(checkpoint)` (a dict with `model`, `mean`, `std`, `hps`) as
(model config, variables, mel statistics).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdrum import torch_io
from jdrum.audio import MelStats
from jdrum.checkpoint import check_fits
from jdrum.models import quantizer, vqvae

CODEBOOK_KEY = "vq.k"

# BodyGBlock: PyTorch `block.<i>` entries → flax path inside the block, and the entry's kind.
_BODY_BLOCK = (
    ("block.0.weight", ("conv_in", "kernel"), "conv"),
    ("block.0.bias", ("conv_in", "bias"), "vector"),
    ("block.1.weight", ("norm", "scale"), "vector"),
    ("block.1.bias", ("norm", "bias"), "vector"),
    ("block.3.conv.weight", ("rc", "conv", "kernel"), "conv"),
    ("block.3.conv.bias", ("rc", "conv", "bias"), "vector"),
    ("block.3.gn.weight", ("rc", "norm", "scale"), "vector"),
    ("block.3.gn.bias", ("rc", "norm", "bias"), "vector"),
    ("block.4.weight", ("conv_out", "kernel"), "conv"),
    ("block.4.bias", ("conv_out", "bias"), "vector"),
)
_HEAD = (("weight", ("kernel",), "conv"), ("bias", ("bias",), "vector"))


def _num_stages(state_dict: Mapping[str, Any], side: str) -> int:
    prefix = f"{side}.blocks."
    indices = {key[len(prefix) :].split(".")[0] for key in state_dict if key.startswith(prefix)}
    return 1 + max((int(i) for i in indices if i.isdigit()), default=-1)


def _vqvae_key_map(state_dict: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], str]]:
    """Every state_dict key the reference VQVAE has → (flax params path, kind)."""
    key_map = {}
    for side in ("encoder", "decoder"):
        stages = _num_stages(state_dict, side)
        blocks = [("block0", "block0")] + [(f"blocks.{i}", f"blocks_{i}") for i in range(stages)]
        heads = [("head0", "head0")] + [(f"heads.{i}", f"heads_{i}") for i in range(stages)]
        for entries, modules in ((_BODY_BLOCK, blocks), (_HEAD, heads)):
            for torch_module, flax_module in modules:
                for name, path, kind in entries:
                    key_map[f"{side}.{torch_module}.{name}"] = ((side, flax_module, *path), kind)
    return key_map


def _convert(key: str, value: Any, kind: str) -> np.ndarray:
    array = np.asarray(value, np.float32)
    if kind == "conv":
        if array.ndim != 3:
            raise ValueError(
                f"{key}: expected a Conv1d weight (out, in/groups, k), got {array.shape}"
            )
        return array.transpose(2, 1, 0)  # (k, in/groups, out)
    if array.ndim != 1:
        raise ValueError(f"{key}: expected a vector, got shape {array.shape}")
    return array


def codebook_variables(k_KxD: np.ndarray, initialised: bool = True) -> dict[str, np.ndarray]:
    """The `"codebook"` collection of a trained codebook (jukebox `restore_k`).

    k_sum = k and k_elem = 1, so EMA training resumes from the trained codes. The reference does
    not save its init flag and re-initialises a loaded codebook from the first training batch;
    `initialised=False` reproduces that.
    """
    k_KxD = np.asarray(k_KxD, np.float32)
    if k_KxD.ndim != 2:
        raise ValueError(f"{CODEBOOK_KEY}: expected a (K, D) codebook, got {k_KxD.shape}")
    return {
        "k": k_KxD,
        "k_sum": k_KxD.copy(),
        "k_elem": np.ones(k_KxD.shape[:1], np.float32),
        "initialised": np.asarray(initialised),
    }


def vqvae_variables(
    state_dict: Mapping[str, Any], *, initialised: bool = True
) -> dict[str, dict[str, Any]]:
    """Converts a reference `model.vqvae.VQVAE` state_dict (PyTorch names and layouts).

    Conv1d weights (out, in/groups, k) become kernels (k, in/groups, out); GroupNorm weight/bias
    become scale/bias; `vq.k` becomes the `"codebook"` collection (`codebook_variables`).

    Args:
      state_dict: name → array (NumPy or anything `np.asarray` takes).
      initialised: mark the codebook as initialised (see `codebook_variables`).

    Returns:
      `{"params": {"encoder": ..., "decoder": ...}, "codebook": {"quantizer": ...}}` with NumPy
      float32 leaves, for `VQVAE.apply`.

    Raises:
      ValueError: listing unknown and missing keys, or naming an entry of the wrong rank.
    """
    key_map = _vqvae_key_map(state_dict)
    torch_io.check_keys("VQ-VAE state_dict", list(state_dict), [CODEBOOK_KEY, *key_map])
    params: dict[str, Any] = {}
    for key, (path, kind) in key_map.items():
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _convert(key, state_dict[key], kind)
    codebook = codebook_variables(state_dict[CODEBOOK_KEY], initialised)
    return {"params": params, quantizer.COLLECTION: {"quantizer": codebook}}


def vqvae_config(
    state_dict: Mapping[str, Any], hps: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`VQVAE` keyword arguments of a reference checkpoint (sizes from the arrays, ratios and
    commit_beta from the stored hps, the reference defaults where the hps do not say)."""
    hps = dict(hps or {})
    first_conv = np.shape(state_dict["encoder.block0.block.0.weight"])
    codebook_size, latent = np.shape(state_dict[CODEBOOK_KEY])
    if "codebook_size" in hps and int(hps["codebook_size"]) != codebook_size:
        raise ValueError(
            f"hps codebook_size {hps['codebook_size']} != {CODEBOOK_KEY} rows {codebook_size}"
        )
    return {
        "codebook_size": int(codebook_size),
        "width": int(first_conv[0]),
        "latent": int(latent),
        "n_mels": int(first_conv[1]),
        "down": tuple(np.asarray(hps.get("downsample_ratios", (0.5, 0.5))).tolist()),
        "up": tuple(np.asarray(hps.get("upsample_ratios", (2, 2))).tolist()),
        "commit_beta": float(hps.get("commit_beta", 0.02)),
    }


@functools.cache
def _abstract_variables(config: tuple) -> Any:
    model = vqvae.VQVAE(**dict(config))
    mel = jax.ShapeDtypeStruct((1, model.n_mels, 16), jnp.float32)
    init = functools.partial(model.init, train=False)
    return jax.eval_shape(init, jax.random.key(0), mel)


def _check_against_model(config: Mapping[str, Any], variables) -> None:
    """Compares converted variables with what `VQVAE(**config).init` creates."""
    expected = _abstract_variables(tuple(config.items()))
    check_fits(f"VQ-VAE variables for {dict(config)}", expected, variables)


def vqvae_from_checkpoint(
    checkpoint: Mapping[str, Any], *, initialised: bool = True
) -> tuple[dict[str, Any], dict[str, Any], MelStats]:
    """Splits an official VQ-VAE checkpoint dict (`model`, `mean`, `std`, optional `hps`).

    Returns:
      (config, variables, stats): `VQVAE(**config)` with `variables` reproduces the reference
      model; `stats` normalises its input mels.
    """
    torch_io.check_keys(
        "VQ-VAE checkpoint", [k for k in checkpoint if k != "hps"], ["model", "mean", "std"]
    )
    state_dict = checkpoint["model"]
    variables = vqvae_variables(state_dict, initialised=initialised)
    config = vqvae_config(state_dict, checkpoint.get("hps"))
    _check_against_model(config, variables)
    return config, variables, MelStats.from_dict(checkpoint)


def load_official_vqvae(
    path: str | os.PathLike, *, initialised: bool = True
) -> tuple[dict[str, Any], dict[str, Any], MelStats]:
    """Reads `vq1_target.pkl` / `vq1_others.pkl` (or the same layout as .npz).

    Returns:
      (config, variables, stats) as `vqvae_from_checkpoint`.
    """
    return vqvae_from_checkpoint(torch_io.read_checkpoint(path), initialised=initialised)
