"""Test-wide settings: the CPU platform and strict jnp rank promotion (STYLE §2, Tests), and
the `load_reference` fixture for the shared reference arrays."""

import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

REFERENCE_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "reference"


@pytest.fixture(scope="session")
def load_reference():
    """load_reference("lm_small.npz") -> {name: array} of a shared reference fixture."""

    def load(name: str) -> dict:
        path = REFERENCE_DIR / name
        if not path.exists():
            pytest.fail(f"reference fixture missing: {path} (needs the shared fixtures checkout)")
        with np.load(path) as npz:
            return {key: npz[key] for key in npz.files}

    return load
