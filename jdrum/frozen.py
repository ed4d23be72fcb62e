"""Frozen model configs from run configs: `from_mapping(LMConfig, config.model)`.

Every model has a frozen, hashable dataclass of its sizes and switches with a `make()` that
builds the module (`models.vqvae.VQVAEConfig`, `models.hifigan.GeneratorConfig` and
`DiscriminatorConfig`, `models.vocos.VocosConfig`, `models.transformer.LMConfig`,
`beat.network.TrackerConfig`). A run's `config.model` (an `ml_collections.ConfigDict`, or the
dict of its `config.json`) also holds training fields; those are left out here, and lists become
tuples so the config hashes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def from_mapping(cls: type[T], mapping: Mapping[str, Any], **overrides) -> T:
    """`cls` (a dataclass) from the keys of `mapping` that are its fields, and `overrides`."""
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {k: _frozen(v) for k, v in dict(mapping).items() if k in fields}
    return cls(**{**values, **overrides})
