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
