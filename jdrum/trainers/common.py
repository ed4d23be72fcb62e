"""What every trainer shares: optimizer and schedule, metric writer, the resumable train loop.

A trainer gives `fit` its initial train state (a function), its `train_step(state, batch) ->
(state, metrics)`, its train data and an evaluator. `fit` writes `config.json`, lays the state
out on the mesh of `config.mesh` (`jdrum.parallel`), jits the step, reads every process's share
of the global batch `config.data.batch_size` from its own shard of the records, and runs
`train_loop`, which restores the latest checkpoint (parameters, optimizer and data position),
logs, evaluates, checkpoints and stops loudly on a non-finite loss.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import grain
import jax
import numpy as np
import optax
import tqdm
from absl import logging

from jdrum import checkpoint, parallel, runs


def learning_rate_schedule(opt) -> optax.Schedule:
    """Linear warm-up over `opt.warmup_steps`, then constant or cosine decay to 0 by
    `opt.decay_steps` (0: no decay; the reference's VQ-VAE and LM schedule is warm-up only)."""
    warmup = optax.linear_schedule(0.0, opt.lr, max(opt.warmup_steps, 1))
    if not opt.decay_steps:
        after = optax.constant_schedule(opt.lr)
    else:
        after = optax.cosine_decay_schedule(opt.lr, max(opt.decay_steps - opt.warmup_steps, 1))
    return optax.join_schedules([warmup, after], [opt.warmup_steps])


def optimizer(opt) -> optax.GradientTransformation:
    """Adam(W) with the schedule above and optional global-norm clipping (`opt.clip` > 0)."""
    parts = []
    if opt.clip:
        parts.append(optax.clip_by_global_norm(opt.clip))
    parts.append(
        optax.adamw(
            learning_rate_schedule(opt),
            b1=opt.b1,
            b2=opt.b2,
            eps=opt.eps,
            weight_decay=opt.weight_decay,
        )
    )
    return optax.chain(*parts)


class Writer:
    """Scalars to TensorBoard (tensorboardX event files in `workdir`) and to the log."""

    def __init__(self, workdir: str):
        self._tb = None
        if jax.process_index() == 0:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(workdir)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        text = ", ".join(f"{k}={v:.5g}" for k, v in values.items())
        logging.info("step %d: %s", step, text)
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, step)

    def images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """Grey-scale (H, W) images, e.g. mel spectrograms (low frequencies at the bottom)."""
        if self._tb is not None:
            for key, image in images.items():
                image = np.asarray(image, np.float32)[::-1]
                span = max(float(image.max() - image.min()), 1e-9)
                self._tb.add_image(key, (image - image.min()) / span, step, dataformats="HW")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def fit(
    config,
    workdir: str,
    *,
    initial_state: Callable[[], object],
    train_step: Callable,
    train_data: Callable[[grain.sharding.ShardOptions, int], object],
    evaluator: Callable[[object], Callable] | None = None,
    learning_rate: Callable[[int], float] | None = None,
):
    """Trains in `workdir` until `config.train.num_steps`, resuming from its latest checkpoint.

    Args:
      config: the run config (`mesh`, `data.batch_size`, `train.*` are read here).
      workdir: the stage folder (`jdrum.runs`).
      initial_state: () -> the step-0 train state. Built directly in its shardings; when a
        checkpoint exists only its shapes are taken (nothing is initialised).
      train_step: (state, batch) -> (state, metrics), a plain function (`parallel.jit_step`).
      train_data: (shard, local batch size) -> an iterable of batches of this process's shard.
      evaluator: mesh -> (state -> metrics), built once.
      learning_rate: the schedule, logged as train/lr.

    Returns:
      The final state.
    """
    runs.write_config(config, workdir)
    mesh = parallel.make_mesh(config.mesh)
    min_size = config.mesh.fsdp_min_size
    if runs.latest_step(workdir) is None:
        state, shardings = parallel.create_state(initial_state, mesh, min_size)
    else:  # the checkpoint replaces every value; only the structure is needed
        state, shardings = parallel.state_template(initial_state, mesh, min_size)
    step = parallel.jit_step(train_step, mesh, shardings)
    shard = grain.sharding.ShardByJaxProcess(drop_remainder=True)
    local_batch = parallel.local_batch_size(config.data.batch_size, mesh)
    return train_loop(
        workdir=workdir,
        state=state,
        train_step=step,
        train_iter=iter(train_data(shard, local_batch)),
        num_steps=config.train.num_steps,
        evaluate=None if evaluator is None else evaluator(mesh),
        log_every=config.train.log_every,
        eval_every=config.train.eval_every,
        checkpoint_every=config.train.checkpoint_every,
        learning_rate=learning_rate,
    )


def _host(metrics) -> dict[str, float]:
    return {k: float(np.asarray(v)) for k, v in jax.device_get(metrics).items()}


def train_loop(
    *,
    workdir: str,
    state,
    train_step: Callable,
    train_iter: Iterator,
    num_steps: int,
    evaluate: Callable | None = None,
    log_every: int = 50,
    eval_every: int = 0,
    checkpoint_every: int = 500,
    max_to_keep: int = 3,
    learning_rate: Callable[[int], float] | None = None,
):
    """Runs `train_step` until `num_steps`, resuming from `workdir/checkpoints` if present.

    Metrics of step n are fetched after step n + 1 is dispatched, so the host never waits on
    the device. `evaluate(state)` runs every `eval_every` steps (0: only at the end) and
    returns scalars, and optionally 2-D arrays that are written as images. `learning_rate`
    (the schedule) is logged as train/lr.

    Returns:
      The final state.

    Raises:
      FloatingPointError: the training loss became NaN or infinite.
    """
    mngr = checkpoint.manager(runs.checkpoint_dir(workdir), max_to_keep)
    step, state = checkpoint.restore_latest(mngr, state, train_iter)
    if step:
        logging.info("resumed from step %d", step)
    writer = Writer(workdir)
    pending = None
    timer = (step, time.perf_counter())
    progress = tqdm.tqdm(
        total=num_steps,
        initial=step,
        desc=os.path.basename(os.path.normpath(workdir)),
        disable=jax.process_index() > 0,
        mininterval=2.0,
    )
    try:
        while step < num_steps:
            batch = next(train_iter)
            state, metrics = train_step(state, batch)
            step += 1
            progress.update()
            if pending is not None:
                _report(writer, *pending, timer, log_every, learning_rate)
            pending = (step, metrics)
            if eval_every and step % eval_every == 0 and step < num_steps and evaluate:
                _write_eval(writer, step, evaluate(state))
            if step % checkpoint_every == 0 or step == num_steps:
                # Check this step's loss first: a non-finite state is never written.
                _report(writer, *pending, timer, log_every, learning_rate)
                pending = None
                checkpoint.save(mngr, step, state, train_iter)
        if pending is not None:
            _report(writer, *pending, timer, 1, learning_rate)
        if evaluate is not None:
            _write_eval(writer, step, evaluate(state))
    finally:
        progress.close()
        mngr.wait_until_finished()
        writer.close()
    return state


def _write_eval(writer: Writer, step: int, result: dict) -> None:
    """Scalars of an evaluation under eval/; 2-D arrays (e.g. mels) as images."""
    images = {f"eval/{k}": v for k, v in result.items() if np.ndim(v) == 2}
    writer.scalars(step, {f"eval/{k}": float(v) for k, v in result.items() if np.ndim(v) == 0})
    if images:
        writer.images(step, images)


def _report(writer: Writer, step: int, metrics, timer, log_every: int, learning_rate) -> None:
    """Checks every step's loss; writes the metrics of every `log_every`-th step."""
    values = _host(metrics)
    if not np.isfinite(values.get("loss", 0.0)):
        raise FloatingPointError(f"step {step}: the training loss is {values['loss']}")
    if step % log_every == 0:
        if learning_rate is not None:
            values["lr"] = float(learning_rate(step - 1))  # the rate step `step` used
        first_step, start = timer
        values["steps_per_second"] = (step - first_step) / max(time.perf_counter() - start, 1e-9)
        writer.scalars(step, {f"train/{k}": v for k, v in values.items()})
