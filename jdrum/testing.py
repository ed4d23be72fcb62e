"""Test helpers that need the library: how far a sharded train step is from one device.

`check_step_equivalence` is what `tests/parallel_test.py` (`make test-slow`) runs for every
stage on 8 fake CPU devices; `max_difference` compares two states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import numpy as np

from jdrum.parallel import PyTree, create_state, jit_step, make_mesh


def max_difference(reference: PyTree, other: PyTree) -> float:
    """Largest |reference − other| / max(1, |reference|) over the leaves of two pytrees with
    the same leaves (float64): the absolute difference for values up to 1, the relative one
    above (float32 sums of values ~30, e.g. codebook distances, differ by ~1e-6 · 30 when
    their order changes). Only leaves are compared, so static fields (a TrainState's `tx`)
    may differ.
    """
    leaves_a = jax.tree.leaves(jax.device_get(reference))
    leaves_b = jax.tree.leaves(jax.device_get(other))
    if len(leaves_a) != len(leaves_b):
        raise ValueError(f"{len(leaves_a)} leaves vs {len(leaves_b)}")
    diffs = []
    for x, y in zip(leaves_a, leaves_b, strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape:
            raise ValueError(f"shapes {x.shape} and {y.shape}")
        if x.size:
            diffs.append(float(np.max(np.abs(x - y) / np.maximum(1.0, np.abs(x)))))
    return max(diffs, default=0.0)


def check_step_equivalence(
    init_fn: Callable[[], PyTree],
    step: Callable[[PyTree, PyTree], tuple[PyTree, PyTree]],
    batches: Sequence[PyTree],
    meshes: Sequence[Mapping[str, int]] = ({"data": 8, "fsdp": 1}, {"data": 4, "fsdp": 2}),
    fsdp_min_size: int = 0,
) -> dict[str, dict[str, float]]:
    """How far a step sharded over a mesh is from the same step on one device.

    Runs `len(batches)` steps from `create_state(init_fn)` on a 1-device mesh and on each of
    `meshes`, and compares the final states and every step's metrics (`max_difference`).
    Needs as many devices as the largest mesh (on CPU:
    XLA_FLAGS=--xla_force_host_platform_device_count=8, set before JAX is imported).

    Args:
      init_fn: () -> state, as for `create_state`.
      step: (state, batch) -> (state, metrics), as for `jit_step`.
      batches: global batches (NumPy; leading axis divisible by every mesh's size).
      meshes: mesh configs to compare with the single device.
      fsdp_min_size: see `param_spec`; 0 splits every array that has a divisible axis.

    Returns:
      {"data=D,fsdp=F": {"state": difference of the final states, "metrics": largest
      difference of the metrics of any step, "fields": {name: difference} per top-level
      field of the state (e.g. "params", "opt_state")}}.
    """

    def run(mesh_config, devices):
        mesh = make_mesh(mesh_config, devices)
        state, shardings = create_state(init_fn, mesh, fsdp_min_size)
        sharded_step = jit_step(step, mesh, shardings)
        metrics = []
        for batch in batches:
            state, step_metrics = sharded_step(state, batch)
            metrics.append(step_metrics)
        return jax.device_get((state, metrics))

    reference_state, reference_metrics = run({"data": 1, "fsdp": 1}, jax.devices()[:1])
    results = {}
    for mesh_config in meshes:
        state, metrics = run(mesh_config, None)
        results[f"data={mesh_config['data']},fsdp={mesh_config['fsdp']}"] = {
            "state": max_difference(reference_state, state),
            "metrics": max_difference(reference_metrics, metrics),
            "fields": _field_differences(reference_state, state),
        }
    return results


def _field_differences(reference: PyTree, other: PyTree) -> dict[str, float]:
    """`max_difference` per top-level field (attribute, key or index) of two states."""
    groups: dict[str, tuple[list, list]] = {}
    paths = jax.tree_util.tree_leaves_with_path(jax.device_get(reference))
    for (path, a), b in zip(paths, jax.tree.leaves(jax.device_get(other)), strict=True):
        name = jax.tree_util.keystr(path[:1]).strip(".[]'\"") if path else ""
        groups.setdefault(name, ([], []))
        groups[name][0].append(a)
        groups[name][1].append(b)
    return {name: max_difference(a, b) for name, (a, b) in groups.items()}
