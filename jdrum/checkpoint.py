"""orbax checkpoints holding the train state and the grain data iterator in one step folder.

A run killed at any moment restarts from its latest step with the same parameters, optimizer
state and position in the data (DESIGN §4).
"""

from __future__ import annotations

import os

import grain
import jax
import orbax.checkpoint as ocp


def manager(directory: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
    """A CheckpointManager with the items "state" (any pytree) and "data" (a grain iterator)."""
    return ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        item_handlers={
            "state": ocp.StandardCheckpointHandler(),
            "data": grain.checkpoint.CheckpointHandler(),
        },
    )


def save(mngr: ocp.CheckpointManager, step: int, state, data_iterator=None) -> None:
    """Saves `state` (and the iterator's position) as step `step`, asynchronously."""
    items = {"state": ocp.args.StandardSave(state)}
    if data_iterator is not None:
        items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    mngr.save(step, args=ocp.args.Composite(**items))


def restore_latest(mngr: ocp.CheckpointManager, state, data_iterator=None):
    """(step, state) of the latest checkpoint, or (0, `state`) when there is none.

    `state` is the template (its shapes, dtypes and shardings are kept); the iterator, if
    given, is moved to where the checkpoint left it.
    """
    step = mngr.latest_step()
    if step is None:
        return 0, state
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    items = {"state": ocp.args.StandardRestore(abstract)}
    if data_iterator is not None:
        items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = mngr.restore(step, args=ocp.args.Composite(**items))
    return step, restored["state"]


def restore_state(directory: str, state):
    """The train state of the latest checkpoint under `directory` (for inference).

    `state` is a template (arrays or `jax.ShapeDtypeStruct`s, e.g. from `jax.eval_shape`).
    Leaves without a sharding are restored onto the first local device, so a run trained on
    many devices or hosts loads on one.
    """
    mngr = manager(directory)
    step = mngr.latest_step()
    if step is None:
        raise FileNotFoundError(f"{directory}: no checkpoint")
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def placed(leaf):
        spec = ocp.utils.to_shape_dtype_struct(leaf)
        if isinstance(spec, jax.ShapeDtypeStruct) and spec.sharding is None:
            spec = jax.ShapeDtypeStruct(spec.shape, spec.dtype, sharding=device)
        return spec

    abstract = jax.tree.map(placed, state)
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
    return restored["state"]
