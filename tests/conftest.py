"""Test-wide settings: the CPU platform and strict jnp rank promotion (STYLE §2, Tests)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
