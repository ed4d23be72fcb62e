"""Pieces shared by the config files: the `:key=value` argument parser and sub-configs."""

from __future__ import annotations

import ml_collections


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """Parses a config file's argument, e.g. "tiny" or "tiny,seed=3", over `defaults`.

    A bare key sets a boolean default to True; `key=value` is converted to the default's type.
    """
    result = ml_collections.ConfigDict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, value = item.partition("=")
        if key not in defaults:
            raise ValueError(f"unknown config argument {key!r}; known: {', '.join(defaults)}")
        kind = type(defaults[key])
        if not sep:
            if kind is not bool:
                raise ValueError(f"config argument {key!r} needs a value")
            result[key] = True
        elif kind is bool:
            result[key] = value.lower() in ("1", "true", "yes")
        else:
            result[key] = kind(value)
    return result


def optimizer(lr: float = 3e-4, warmup_steps: int = 100, clip: float = 0.0):
    """Adam(W) settings read by `jdrum.trainers.common.optimizer` (reference: Adam 3e-4,
    100-step warm-up, no clipping, no decay)."""
    return ml_collections.ConfigDict(
        dict(
            lr=lr,  # peak learning rate
            warmup_steps=warmup_steps,  # linear warm-up from 0
            decay_steps=0,  # cosine decay to 0 by this step; 0 keeps the rate constant
            clip=clip,  # global-norm gradient clipping; 0 disables it
            b1=0.9,
            b2=0.999,
            eps=1e-8,
            weight_decay=0.0,
        )
    )


def mesh(data: int = -1, fsdp: int = 1):
    """The device mesh read by `jdrum.parallel.make_mesh` (axes "data" and "fsdp").

    Batches are split over data × fsdp devices; with fsdp > 1 the train state's large arrays
    are also split over the fsdp axis (`jdrum.parallel.param_spec`).
    """
    return ml_collections.ConfigDict(
        dict(
            data=data,  # data-parallel axis size; -1: every device that fsdp leaves
            fsdp=fsdp,  # parameter-sharding axis size; 1: every array replicated
            fsdp_min_size=2**18,  # arrays with fewer values stay replicated under fsdp
        )
    )
