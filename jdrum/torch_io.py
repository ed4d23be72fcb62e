"""PyTorch checkpoint files as plain dicts of NumPy arrays (`read_checkpoint`).

What `jdrum.convert` reads the authors' files with, and what a tracker named "da2:FILE"
(`jdrum.runs.tracker`) is read with. torch is needed only for `.pkl`/`.pth`/`.pt` files
(`pip install 'jdrum[convert]'`); `.npz` files hold the same dicts without it.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

TORCH_SUFFIXES = (".pkl", ".pth", ".pt")


def _to_numpy(value: Any) -> Any:
    """torch tensors (also inside dicts, lists, tuples) → NumPy arrays; the rest unchanged."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    if isinstance(value, Mapping):
        return {key: _to_numpy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_numpy(item) for item in value)
    return value


def _nest(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        head, sep, rest = name.partition("/")
        if sep:
            nested.setdefault(head, {})[rest] = value
        else:
            nested[name] = value
    return nested


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a checkpoint file into plain dicts of NumPy arrays.

    `.pkl`/`.pth`/`.pt`: `torch.load(map_location="cpu", weights_only=False)` — the official
    pickles hold NumPy arrays next to the tensors, so the safe loader cannot read them; only
    read files you trust. `.npz`: names are split at the first "/" into nested dicts.

    Args:
      path: the checkpoint file.

    Returns:
      The checkpoint's top-level dict (a bare state_dict for state_dict files).
    """
    path = pathlib.Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return _nest({name: npz[name] for name in npz.files})
    # The official vocoder file (`ckpt/vocoder/generator`) has no extension: a torch file too.
    if path.suffix and path.suffix not in TORCH_SUFFIXES:
        raise ValueError(f"{path}: unknown checkpoint type (expected .npz, .pkl, .pth or .pt)")
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading {path.name} needs torch: pip install 'jdrum[convert]'"
        ) from None
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path}: expected a dict, got {type(checkpoint).__name__}")
    return _to_numpy(checkpoint)


def check_keys(what: str, given, expected) -> None:
    """One ValueError naming the unknown and missing keys of a state_dict (none are skipped)."""
    unknown = [key for key in given if key not in expected]
    missing = [key for key in expected if key not in given]
    if unknown or missing:
        raise ValueError(f"{what}: unknown keys {unknown}; missing keys {missing}")
