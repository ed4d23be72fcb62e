"""orbax checkpoints holding the train state and the grain data iterator in one step folder.

A run killed at any moment restarts from its latest step with the same parameters, optimizer
state and position in the data (DESIGN §4). A step that cannot be read (a damaged or
half-copied file) is a `CheckpointError`, one line naming the folder and the step; training
then resumes from the newest step that can be read, and says so.
"""

from __future__ import annotations

import contextlib
import io
import logging as logging_lib
import os
import sys
import time

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

# After a failed restore, orbax's other reads fail on their own threads within milliseconds.
ABANDONED_READS_SETTLE_S = 0.2


class CheckpointError(ValueError):
    """A checkpoint step that cannot be read."""


def _root_cause(error: BaseException) -> str:
    """The first line of the innermost exception behind `error` (orbax wraps the real cause,
    e.g. "Data corruption detected", in several layers of asyncio errors)."""
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    for candidate in reversed(seen):
        lines = str(candidate).strip().splitlines()
        if lines:
            return f"{type(candidate).__name__}: {lines[0][:300]}"
    return type(seen[-1]).__name__


class _AbandonedReadsFilter(logging_lib.Filter):
    """Drops asyncio's "Task exception was never retrieved" and concurrent.futures' "exception
    calling callback for" of orbax's abandoned reads."""

    def filter(self, record: logging_lib.LogRecord) -> bool:
        message = str(record.msg)
        return not message.startswith(
            ("Task exception was never retrieved", "exception calling callback for")
        )


def _ignore_abandoned_reads() -> None:
    """After a failed restore, orbax leaves its other reads running on an asyncio loop it has
    closed. As they are collected each prints a traceback (asyncio's "Task exception was never
    retrieved", or "RuntimeError: Event loop is closed" at exit) that repeats the error
    `CheckpointError` already reports; these two are dropped, everything else is reported."""
    for name in ("asyncio", "concurrent.futures"):
        logger = logging_lib.getLogger(name)
        if not any(isinstance(f, _AbandonedReadsFilter) for f in logger.filters):
            logger.addFilter(_AbandonedReadsFilter())
    previous = sys.unraisablehook
    if getattr(previous, "jdrum_closed_loop_filter", False):
        return

    def hook(unraisable):
        error = unraisable.exc_value
        if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
            previous(unraisable)

    hook.jdrum_closed_loop_filter = True
    sys.unraisablehook = hook


def _restore(mngr: ocp.CheckpointManager, step: int, items: dict):
    """`mngr.restore`, with what its threads print to stderr held back: passed on if the
    restore succeeds, dropped with the abandoned reads' tracebacks if it fails."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            try:
                restored = mngr.restore(step, args=ocp.args.Composite(**items))
            except Exception:
                _ignore_abandoned_reads()
                time.sleep(ABANDONED_READS_SETTLE_S)  # let them fail while stderr is held
                raise
    except Exception as error:  # orbax raises many kinds; all mean "this step is unreadable"
        raise CheckpointError(
            f"{mngr.directory}: checkpoint step {step} cannot be read ({_root_cause(error)})"
        ) from error
    sys.stderr.write(held.getvalue())
    return restored


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
    """(step, state) of the newest readable checkpoint, or (0, `state`) when there is none.

    `state` is the template (its shapes, dtypes and shardings are kept); the iterator, if
    given, is moved to where the checkpoint left it. Unreadable steps are skipped with a
    warning and, once an older step restores, moved aside to `<step>.unreadable` (kept, not
    deleted; the run saves that step again); if no step can be read, the newest one's
    `CheckpointError` is raised and nothing is moved.
    """
    steps = sorted(mngr.all_steps(), reverse=True)
    if not steps:
        return 0, state
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    first_error = None
    for step in steps:
        items = {"state": ocp.args.StandardRestore(abstract)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        try:
            restored = _restore(mngr, step, items)
        except CheckpointError as error:
            first_error = first_error or error
            logging.warning("%s; trying the step before", error)
            continue
        if first_error is not None:
            logging.warning("resuming from step %d, the newest readable checkpoint", step)
            _move_aside(mngr, [s for s in steps if s > step])
        return step, restored["state"]
    raise first_error


def _move_aside(mngr: ocp.CheckpointManager, steps) -> None:
    if jax.process_index() == 0:
        for step in steps:
            path = os.path.join(os.fspath(mngr.directory), str(step))
            target, count = f"{path}.unreadable", 1
            while os.path.exists(target):
                target, count = f"{path}.unreadable{count}", count + 1
            os.replace(path, target)
            logging.warning("moved the unreadable step %d to %s", step, target)
    mngr.reload()


def _on_one_device(template):
    """The template's leaves as `ShapeDtypeStruct`s; those without a sharding go to the first
    local device, so a run trained on many devices or hosts loads on one."""
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def placed(leaf):
        spec = ocp.utils.to_shape_dtype_struct(leaf)
        if isinstance(spec, jax.ShapeDtypeStruct) and spec.sharding is None:
            spec = jax.ShapeDtypeStruct(spec.shape, spec.dtype, sharding=device)
        return spec

    return jax.tree.map(placed, template)


def _latest_step(mngr: ocp.CheckpointManager, directory: str) -> int:
    step = mngr.latest_step()
    if step is None:
        raise FileNotFoundError(f"{directory}: no checkpoint")
    return step


def restore_state(directory: str, state):
    """The whole train state of the latest checkpoint under `directory` (e.g. to compare runs).

    `state` is a template (arrays or `jax.ShapeDtypeStruct`s, e.g. from `jax.eval_shape`) of
    the saved state; see `_on_one_device` for where the leaves go.
    """
    mngr = manager(directory)
    step = _latest_step(mngr, directory)
    items = {"state": ocp.args.StandardRestore(_on_one_device(state))}
    return _restore(mngr, step, items)["state"]


def restore_fields(directory: str, template: dict):
    """Some top-level fields of the latest checkpoint's state, e.g. {"params": ...} for
    inference: only those are read (not the optimizer's moments, not the data iterator).

    `template`: {field: tree of arrays or `ShapeDtypeStruct`s}, shapes of the saved fields.
    """
    mngr = ocp.CheckpointManager(
        os.path.abspath(directory), item_handlers={"state": ocp.PyTreeCheckpointHandler()}
    )
    step = _latest_step(mngr, directory)
    item = _on_one_device(template)
    args = ocp.args.PyTreeRestore(
        item=item,
        restore_args=ocp.checkpoint_utils.construct_restore_args(item),
        partial_restore=True,
    )
    return _restore(mngr, step, {"state": args})["state"]


def save_fields(directory: str, fields: dict) -> None:
    """Writes `fields` as step 0's state under `directory` and waits: a run that holds only
    what inference reads (e.g. weights converted from the reference)."""
    mngr = manager(directory)
    save(mngr, 0, fields)
    mngr.wait_until_finished()


def check_fits(what: str, expected, given) -> None:
    """Compares given weights (arrays) with the abstract ones a model's init creates (arrays
    or `ShapeDtypeStruct`s): one ValueError naming unknown and missing entries, or entries of
    the wrong shape.

    Raises:
      ValueError: `what` does not fit.
    """
    flat_expected = {
        jax.tree_util.keystr(p): tuple(np.shape(leaf))
        for p, leaf in jax.tree_util.tree_leaves_with_path(expected)
    }
    flat_given = {
        jax.tree_util.keystr(p): tuple(np.shape(leaf))
        for p, leaf in jax.tree_util.tree_leaves_with_path(given)
    }
    unknown = [key for key in flat_given if key not in flat_expected]
    missing = [key for key in flat_expected if key not in flat_given]
    if unknown or missing:
        raise ValueError(f"{what}: unknown keys {unknown}; missing keys {missing}")
    wrong = [f"{p} {flat_given[p]} != {s}" for p, s in flat_expected.items() if flat_given[p] != s]
    if wrong:
        raise ValueError(f"{what}: wrong shapes {wrong}")
