"""Distilled beat trackers: the Flax BLSTM trained on one stem (drumless or drums) of clips.

The paper's "non-drum tracker" hears drumless audio, its "drum tracker" drums. Targets are
per-frame class distributions over [non-beat, downbeat, beat] at 100 frames/s, from the
records' true beats (each beat also marks its two neighbour frames at half weight, as madmom
trains) or, for data without annotations, from a teacher: madmom's downbeat ensemble on the
full mix (drums + drumless).

Devices and data: `common.fit`.
"""

from __future__ import annotations

import functools
import os

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from jdrum import audio, data, parallel, runs
from jdrum.beat import dbn, features, metrics, network, weights
from jdrum.trainers import common

NEIGHBOUR_WEIGHT = 0.5


def frame_targets(beats_Nx2: np.ndarray, num_frames: int) -> np.ndarray:
    """(num_frames, 3) target distributions [non-beat, downbeat, beat] from (time, position)."""
    targets = np.zeros((num_frames, 3), np.float32)
    for time_s, position in np.asarray(beats_Nx2, np.float64).reshape(-1, 2):
        frame = int(round(time_s * dbn.FPS))
        label = 1 if position == 1 else 2
        for offset, weight in ((0, 1.0), (-1, NEIGHBOUR_WEIGHT), (1, NEIGHBOUR_WEIGHT)):
            if 0 <= frame + offset < num_frames:
                targets[frame + offset, label] = max(targets[frame + offset, label], weight)
    targets[:, 0] = 1.0 - targets[:, 1:].sum(axis=-1).clip(0.0, 1.0)
    return targets / targets.sum(axis=-1, keepdims=True)


def teacher_targets(mix: np.ndarray, num_frames: int) -> np.ndarray:
    """(num_frames, 3) [non-beat, downbeat, beat] from madmom's ensemble on the full mix."""
    act = dbn.downbeat_activations(mix)[:num_frames]
    out = np.zeros((num_frames, 3), np.float32)
    out[: len(act), 1], out[: len(act), 2] = act[:, 1], act[:, 0]
    out[:, 0] = 1.0 - out[:, 1] - out[:, 2]
    out[len(act) :, 0] = 1.0
    return out


class Featurize(grain.transforms.Map):
    """Clip record -> {"features": (T, 314), "targets": (T, 3), "beats": true beats}."""

    def __init__(self, stem: str, targets: str):
        if stem not in ("drums", "drumless"):
            raise ValueError(f"stem must be 'drums' or 'drumless': {stem!r}")
        if targets not in ("truth", "teacher", "auto"):
            raise ValueError(f"targets must be 'truth', 'teacher' or 'auto': {targets!r}")
        self.stem, self.targets = stem, targets

    def map(self, record):
        x = audio.from_pcm16(np.asarray(record[self.stem]))
        feats = features.madmom_features(x)
        num_frames = feats.shape[0]
        truth = np.asarray(record["true_beats"], np.float32).reshape(-1, 2)
        use_truth = self.targets == "truth" or (self.targets == "auto" and len(truth))
        if use_truth:
            targets = frame_targets(truth, num_frames)
        else:
            mix = audio.from_pcm16(np.asarray(record["drums"])) + audio.from_pcm16(
                np.asarray(record["drumless"])
            )
            targets = teacher_targets(mix, num_frames)
        return {"features": feats.astype(np.float32), "targets": targets}


def make_model(config) -> network.BeatTracker:
    """The run config's tracker (`runs.tracker_config`)."""
    return runs.tracker_config(config).make()


def initial_params(model, model_config, rng, num_features: int = features.NUM_FEATURES):
    params = model.init(rng, jnp.zeros((1, 8, num_features), jnp.float32))
    if model_config.init == "madmom":
        ensemble = weights.load_madmom_downbeat_ensemble()
        params = jax.tree.map(lambda x: x[0], ensemble)  # the first of the 8 networks
    elif model_config.init != "random":
        raise ValueError(f"model.init must be 'random' or 'madmom': {model_config.init!r}")
    return params


def loss_fn(params, model, batch):
    """Mean cross-entropy (nats) between the target distributions and the predictions."""
    logits_BxTx3 = model.apply(params, batch["features"], method=model.logits)
    log_p = jax.nn.log_softmax(logits_BxTx3, axis=-1)
    return -jnp.mean(jnp.sum(batch["targets"] * log_p, axis=-1))


def train_step(state, batch, model):
    """One optimizer step on batch {"features": (B, T, 314), "targets": (B, T, 3)}.

    A plain function: `parallel.jit_step(functools.partial(train_step, model=model), ...)`
    jits it for a mesh.

    Returns:
      The new state and metrics {"loss", "grad_norm"}.
    """
    loss, grads = jax.value_and_grad(loss_fn)(state.params, model, batch)
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, "grad_norm": optax.tree_utils.tree_norm(grads)}


def _dataset(config, split: str, shuffle: bool, num_epochs: int | None, shard=None):
    source = data.data_source(config.data.dataset, split, config.data.data_dir)
    ds = data.record_dataset(source, config.seed, shuffle, num_epochs, shard)
    return ds.map(Featurize(config.data.stem, config.data.targets)), source


def _loss_and_probabilities(params, batch, model):
    loss = loss_fn(params, model, batch)
    return loss, model.apply(params, batch["features"], method=model.probabilities)


def evaluate(params, model, config, mesh=None) -> dict[str, float]:
    """Loss over the whole validation split and beat F1 (madmom's default DBN on the tracker's
    probabilities, `dbn.decode`) where the clips have true beats.

    Every process evaluates the whole split (`parallel.replicated_evaluation`).
    """
    ds, source = _dataset(config, "validation", shuffle=False, num_epochs=1)
    step = parallel.replicated_evaluation(_loss_and_probabilities, mesh, static_argnums=(2,))
    losses, f1 = [], []
    for i, item in enumerate(ds):
        loss, probabilities = step(params, jax.tree.map(lambda x: x[None], item), model)
        losses.append(float(loss))
        truth = np.asarray(source[i]["true_beats"], np.float32).reshape(-1, 2)
        if len(truth) >= 2:
            estimated = dbn.decode(np.asarray(probabilities)[0])
            f1.append(metrics.beat_f1(truth[:, 0], estimated[:, 0]))
    result = {"loss": float(np.mean(losses))}
    if f1:
        result["beat_f1"] = float(np.mean(f1))
    return result


def train_and_evaluate(config, workdir: str):
    """Trains the tracker of `config` in `workdir` (resuming) and evaluates it at the end."""
    model = make_model(config)
    # On the host: the jitted init takes them as constants on every mesh.
    params = jax.device_get(initial_params(model, config.model, jax.random.key(config.seed)))

    def train_data(shard, batch_size):
        ds, _ = _dataset(config, "train", shuffle=True, num_epochs=None, shard=shard)
        return ds.batch(batch_size, drop_remainder=True)

    state = common.fit(
        config,
        workdir,
        initial_state=lambda: train_state.TrainState.create(
            apply_fn=model.apply, params=params, tx=common.optimizer(config.opt)
        ),
        train_step=functools.partial(train_step, model=model),
        train_data=train_data,
        evaluator=lambda mesh: lambda s: evaluate(s.params, model, config, mesh),
        learning_rate=common.learning_rate_schedule(config.opt),
    )
    logging.info("tracker written to %s", os.path.abspath(workdir))
    return state
