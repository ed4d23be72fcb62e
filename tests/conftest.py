"""Test-wide settings: the CPU platform and strict jnp rank promotion (STYLE §2, Tests), the
`load_reference` fixture for the shared reference arrays, and `tiny_sampling_run`."""

import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

import tiny_run  # noqa: E402  (the tests' helper module, beside this file)

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


@pytest.fixture(scope="session")
def tiny_sampling_run(tmp_path_factory):
    """A complete untrained tiny run directory (`tiny_run.make_tiny_run` on synthstems/tiny),
    built once per test process for the tests that sample from it (sample, prime); they only
    read it."""
    data_dir = tmp_path_factory.mktemp("tfds")
    run_dir = tmp_path_factory.mktemp("run")
    tiny_run.build_dataset(data_dir)
    tiny_run.make_tiny_run(run_dir, data_dir)
    return str(run_dir)
