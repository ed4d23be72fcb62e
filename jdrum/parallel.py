"""Meshes, shardings and multi-host helpers: the same jitted step on 1 CPU, 8 GPUs or a pod.

A `Mesh` has two axes (DESIGN §4): "data" (data parallelism) and "fsdp" (data parallelism
that also splits the parameters and optimizer state, ZeRO-3 style). Batches are split along
their leading axis over both axes, i.e. over every device; the train state is replicated,
except that with fsdp > 1 every array of at least `fsdp_min_size` values is split along its
largest axis that the fsdp size divides (`param_spec`). XLA inserts the all-gathers and
reduce-scatters; the step itself is written for one device.

A trainer adopts it with three calls (`jdrum.trainers.common.fit` makes them for every stage):

    mesh = parallel.make_mesh(config.mesh)
    state, shardings = parallel.create_state(
        lambda: initial_state(...), mesh, fsdp_min_size=config.mesh.fsdp_min_size)
    step = parallel.jit_step(functools.partial(train_step, model=model), mesh, shardings)

and reads `parallel.local_batch_size(config.data.batch_size, mesh)` records per process from
a grain pipeline sharded by process (`data.record_dataset(..., shard=...)`). `step(state,
batch)` takes the process-local NumPy batch and makes it a global array (`global_batch`).

Many hosts: `initialize_distributed` (called by `jdrum.train` under `--distributed`) joins the
processes; every process then runs the same program, reads its own shard of the records and
passes its part of every global batch.

One host, many cores: `process_map` runs independent jobs (songs of a dataset build, the
demo's two VQ-VAEs or two LMs) in parallel processes.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXES = ("data", "fsdp")  # the mesh axes
BATCH_AXES = AXES  # a batch's leading axis is split over every device
DEFAULT_FSDP_MIN_SIZE = 2**18  # arrays smaller than this (1 MiB of float32) stay replicated
ENV_DISTRIBUTED = "JDRUM_DISTRIBUTED"

PyTree = Any


def process_map(fn: Callable, *iterables: Iterable, num_workers: int = 1) -> Iterator:
    """`map(fn, *iterables)`, in order, in `num_workers` processes (here when <= 1).

    The processes are spawned, not forked (a forked JAX runtime deadlocks), so `fn` and its
    arguments must pickle: a module-level function of plain values. An exception in a job is
    raised here.
    """
    if num_workers <= 1:
        yield from map(fn, *iterables)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context) as pool:
        yield from pool.map(fn, *iterables)


def _field(mesh_config, name: str, default):
    if isinstance(mesh_config, Mapping):
        return mesh_config.get(name, default)
    return getattr(mesh_config, name, default)


def make_mesh(mesh_config=None, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The ("data", "fsdp") mesh of `mesh_config` (`configs/common.py` `mesh()`).

    Args:
      mesh_config: a ConfigDict or mapping with `data` (data-parallel size; -1: every device
        that `fsdp` leaves) and `fsdp` (parameter-sharding size; 1: off). None: data=-1, fsdp=1.
      devices: the devices to use (default: every device of every process).

    Returns:
      A Mesh of shape (data, fsdp) whose axes are of the Auto type (shardings are propagated
      by the compiler; the step code needs no sharding annotations).
    """
    devices = list(jax.devices() if devices is None else devices)
    data = int(_field(mesh_config, "data", -1))
    fsdp = int(_field(mesh_config, "fsdp", 1))
    if fsdp < 1 or len(devices) % fsdp:
        raise ValueError(f"mesh.fsdp={fsdp} must be >= 1 and divide the {len(devices)} devices")
    if data == -1:
        data = len(devices) // fsdp
    if data < 1 or data * fsdp > len(devices):
        raise ValueError(
            f"mesh data={data} x fsdp={fsdp} needs {data * fsdp} devices; {len(devices)} exist"
        )
    return jax.make_mesh(
        (data, fsdp), AXES, axis_types=(AxisType.Auto,) * 2, devices=devices[: data * fsdp]
    )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over every device of the mesh, other axes whole."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """The whole array on every device of the mesh."""
    return NamedSharding(mesh, P())


def param_spec(shape: Sequence[int], fsdp: int, min_size: int = DEFAULT_FSDP_MIN_SIZE) -> P:
    """How one state array is placed: P() (replicated) or split over "fsdp" along one axis.

    An array is split when fsdp > 1, it has at least `min_size` values and one of its axes is
    divisible by `fsdp`: the largest such axis (the last one on ties). Everything else, e.g.
    biases, norms and the step counter, is replicated.
    """
    if fsdp <= 1 or math.prod(shape) < max(min_size, 1):
        return P()
    candidates = [(size, axis) for axis, size in enumerate(shape) if size % fsdp == 0]
    if not candidates:
        return P()
    _, axis = max(candidates)
    return P(*([None] * axis), "fsdp")


def state_shardings(
    abstract_state: PyTree, mesh: Mesh, fsdp_min_size: int = DEFAULT_FSDP_MIN_SIZE
) -> PyTree:
    """A NamedSharding per leaf of `abstract_state` (e.g. `jax.eval_shape(init)`), by
    `param_spec`."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(
        lambda x: NamedSharding(mesh, param_spec(np.shape(x), fsdp, fsdp_min_size)),
        abstract_state,
    )


def create_state(
    init_fn: Callable[[], PyTree], mesh: Mesh, fsdp_min_size: int = DEFAULT_FSDP_MIN_SIZE
) -> tuple[PyTree, PyTree]:
    """Builds the train state directly in its shardings (never whole on one device first).

    Args:
      init_fn: () -> state pytree (e.g. a flax TrainState); it closes over its inputs (rng
        seeds, NumPy statistics), which become constants of the jitted init.
      mesh: from `make_mesh`.
      fsdp_min_size: see `param_spec`.

    Returns:
      (state, shardings): the state as global arrays and the matching pytree of
      NamedShardings, for `jit_step` and for orbax restores.
    """
    abstract = jax.eval_shape(init_fn)
    shardings = state_shardings(abstract, mesh, fsdp_min_size)
    leaves, treedef = jax.tree.flatten(abstract)
    # Jit the leaves only: the static fields of the state (apply_fn, tx) are taken from the
    # abstract state, so `init_fn` may build a new optimizer object on every call.
    init_leaves = jax.jit(
        lambda: jax.tree.leaves(init_fn()), out_shardings=jax.tree.leaves(shardings)
    )
    state = jax.tree.unflatten(treedef, init_leaves())
    logging.info(
        "state: %s values on a %s mesh (%d arrays split over fsdp)",
        f"{sum(math.prod(x.shape) for x in leaves):,}",
        dict(mesh.shape),
        sum(spec.spec != P() for spec in jax.tree.leaves(shardings)),
    )
    return state, shardings


def state_template(
    init_fn: Callable[[], PyTree], mesh: Mesh, fsdp_min_size: int = DEFAULT_FSDP_MIN_SIZE
) -> tuple[PyTree, PyTree]:
    """(template, shardings) like `create_state`'s, with nothing computed: `jax.ShapeDtypeStruct`
    leaves carrying their shardings, for a state that a checkpoint restore fills in."""
    abstract = jax.eval_shape(init_fn)
    shardings = state_shardings(abstract, mesh, fsdp_min_size)
    template = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings
    )
    return template, shardings


@functools.lru_cache(maxsize=32)
def _evaluation_jit(fn: Callable, mesh: Mesh | None, static_argnums: tuple[int, ...]):
    out_shardings = None if mesh is None else replicated_sharding(mesh)
    return jax.jit(fn, static_argnums=static_argnums, out_shardings=out_shardings)


def replicated_evaluation(
    fn: Callable, mesh: Mesh | None, static_argnums: tuple[int, ...] = ()
) -> Callable:
    """`fn(state, batch, *rest)` jitted for evaluating a whole split in every process: with a
    `mesh` (a state on many devices or hosts) the batch is replicated over it and so are the
    outputs; None places everything on the default device."""
    step = _evaluation_jit(fn, mesh, tuple(static_argnums))

    def run(state, batch, *rest):
        if mesh is not None:
            batch = replicate(batch, mesh)
        return step(state, batch, *rest)

    return run


def global_batch(local_batch: PyTree, mesh: Mesh) -> PyTree:
    """Each process's part of a batch (NumPy, leading axis B / process_count) → global arrays.

    Leaves that already are jax.Arrays are returned as they are. The global batch is the
    concatenation of the processes' parts in process order; its leading axis is split over
    every device of the mesh (`batch_sharding`).
    """
    sharding = batch_sharding(mesh)

    def place(x):
        if isinstance(x, jax.Array):
            return x
        return jax.make_array_from_process_local_data(sharding, np.asarray(x))

    return jax.tree.map(place, local_batch)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Host values that are the same in every process → arrays replicated over the mesh."""
    sharding = replicated_sharding(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree
    )


def local_batch_size(batch_size: int, mesh: Mesh) -> int:
    """Records per process of a global batch of `batch_size`; checks that it splits evenly."""
    if batch_size % mesh.size:
        raise ValueError(f"batch size {batch_size} does not split over {mesh.size} devices")
    return batch_size // jax.process_count()


class ShardedStep:
    """A jitted `(state, batch) -> (state, metrics)` with explicit shardings (see `jit_step`).

    Calling it places process-local NumPy batches with `global_batch` first; `jitted` is the
    `jax.jit` function itself (for `lower`, cost analysis or global-array batches).
    """

    def __init__(self, jitted, mesh: Mesh):
        self.jitted = jitted
        self.mesh = mesh

    def __call__(self, state, batch):
        return self.jitted(state, global_batch(batch, self.mesh))


def jit_step(
    step: Callable[[PyTree, PyTree], tuple[PyTree, PyTree]],
    mesh: Mesh,
    state_shardings: PyTree,
    donate: bool = True,
) -> ShardedStep:
    """Jits a train step for the mesh.

    Args:
      step: (state, batch) -> (new state, metrics), written for one device (e.g.
        `functools.partial(train_step, model=model)`).
      mesh: from `make_mesh`.
      state_shardings: from `create_state`; the new state keeps them.
      donate: donate the input state's buffers to the new state.

    Returns:
      A `ShardedStep`: in_shardings (state_shardings, batch split along its leading axis),
      out_shardings (state_shardings, metrics replicated).
    """
    jitted = jax.jit(
        step,
        in_shardings=(state_shardings, batch_sharding(mesh)),
        out_shardings=(state_shardings, replicated_sharding(mesh)),
        donate_argnums=(0,) if donate else (),
    )
    return ShardedStep(jitted, mesh)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins this process to a multi-process run (`jax.distributed.initialize`).

    Arguments left None are read from the environment: JAX_COORDINATOR_ADDRESS and
    JAX_LOCAL_DEVICE_IDS, or detected on SLURM, Open MPI and Cloud TPU VMs. On one machine
    (e.g. CPU tests) pass all three. Must run before any other JAX call.
    """
    kwargs = dict(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )
    jax.distributed.initialize(**{k: v for k, v in kwargs.items() if v is not None})
    logging.info(
        "distributed: process %d of %d, %d local of %d devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )


def distributed_requested(flag: bool) -> bool:
    """Whether to join a multi-process run: the flag, or the env var JDRUM_DISTRIBUTED=1."""
    return flag or os.environ.get(ENV_DISTRIBUTED, "").lower() in ("1", "true", "yes")


def _digest(leaves):
    return jnp.stack(
        [jnp.stack([jnp.sum(x), jnp.sum(x * x)]) for x in (y.astype(jnp.float32) for y in leaves)]
    )


def state_digest(state: PyTree) -> np.ndarray:
    """(L, 2) float32: [Σx, Σx²] of each of the L jax.Array leaves of `state`, as this process
    computes them from its own copies.

    Replicated arrays are summed from each process's own replica, so processes whose copies
    diverged (e.g. from different constants) get different digests.
    """
    leaves = [
        jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        for x in jax.tree.leaves(state)
        if isinstance(x, jax.Array)
    ]
    if not leaves:
        return np.zeros((0, 2), np.float32)
    sharding = leaves[0].sharding
    if isinstance(sharding, NamedSharding):
        digest = jax.jit(_digest, out_shardings=replicated_sharding(sharding.mesh))(leaves)
    else:
        digest = jax.jit(_digest)(leaves)
    return np.asarray(digest.addressable_data(0))


def check_processes_agree(state: PyTree) -> str:
    """Logs a hash of `state_digest` and raises if the processes' digests differ.

    Returns:
      The hash (hex), the same in every process.

    Raises:
      AssertionError: a process holds a different state (e.g. it computed different
        constants), which a replicated array would otherwise hide.
    """
    from jax.experimental import multihost_utils

    digest = state_digest(state)
    fingerprint = hashlib.sha256(digest.tobytes()).hexdigest()[:16]
    index = jax.process_index()
    logging.info("state digest (process %d): %s over %d arrays", index, fingerprint, len(digest))
    if jax.process_count() > 1:
        multihost_utils.assert_equal(digest, "processes hold different train states")
    return fingerprint
