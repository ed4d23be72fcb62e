"""The drum transcriber (`jdrum.models.transcriber`): clip records with drum notes → onsets and
velocities per class and frame.

Targets come from the records' `drum_notes` (synthstems; `jdrum.datasets.records`): per class,
1 at the frame centred nearest each onset and `config.loss.neighbour` at the frames on either
side (a hit 1 frame off costs less); notes of keys in no class are left out. The loss is the
binary cross-entropy of every frame and class, positive frames weighted by
`config.loss.pos_weight` (one weight, or one per class: onsets are rare, a few per second, and
toms and crashes rarer still), plus
`config.loss.velocity_weight` × the squared error of the velocity head (MIDI velocity / 127)
at the onset frames only. The log-mel is computed on the device from the clip audio
(`config.data.stem`, the drums).

The evaluation reports the loss over the validation clips and transcribes the whole songs of
`config.eval.dataset` / `config.eval.split` (`jdrum.data.songs`; by default the training
dataset's validation songs): per class onset F1, precision and recall at 50 ms, pooled over
songs, and the velocity error (`jdrum.models.transcriber.score`), logged as eval/f1_<class>,
eval/precision_<class>, eval/recall_<class>, eval/velocity_error, eval/f1.

Devices and data: `common.fit`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from jdrum import audio, data, parallel, runs
from jdrum.models import transcriber as model_lib
from jdrum.trainers import common


def note_targets(
    notes_Nx3: np.ndarray, num_frames: int, hop_length: int, neighbour: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Frame targets of a clip's drum notes.

    Args:
      notes_Nx3: [onset s from the clip start, General MIDI key, MIDI velocity].
      num_frames: frames of the clip (samples // hop_length).
      hop_length: samples per frame.
      neighbour: the onset target of the frames next to an onset's (0: none).

    Returns:
      onsets_TxC: 1 at each note's frame (`model_lib.onset_frames`), `neighbour` beside it.
      velocity_TxC: MIDI velocity / 127 where onsets_TxC is 1 (the loudest note of a class in
        a frame), else 0.
    """
    onsets = np.zeros((num_frames, model_lib.NUM_CLASSES), np.float32)
    velocity = np.zeros_like(onsets)
    notes_Nx3 = np.asarray(notes_Nx3, np.float64).reshape(-1, 3)
    frames = model_lib.onset_frames(notes_Nx3[:, 0], hop_length)
    for frame, key, midi_velocity in zip(frames, notes_Nx3[:, 1], notes_Nx3[:, 2], strict=True):
        c = model_lib.class_of_key(key)
        if c is None or not 0 <= frame < num_frames:
            continue
        for offset in (-1, 1):
            if 0 <= frame + offset < num_frames:
                onsets[frame + offset, c] = max(onsets[frame + offset, c], neighbour)
        onsets[frame, c] = 1.0
        velocity[frame, c] = max(velocity[frame, c], midi_velocity / 127.0)
    return onsets, velocity


class Targets(grain.transforms.Map):
    """Clip record -> {"audio": (L,) int16 PCM, "onsets": (T, C), "velocity": (T, C)}."""

    def __init__(self, stem: str, hop_length: int, neighbour: float):
        self.stem, self.hop_length, self.neighbour = stem, hop_length, neighbour

    def map(self, record):
        pcm = np.asarray(record[self.stem], np.int16)
        if "drum_notes" not in record:
            raise ValueError("the transcriber trains on records with drum_notes (synthstems)")
        onsets, velocity = note_targets(
            record["drum_notes"], len(pcm) // self.hop_length, self.hop_length, self.neighbour
        )
        return {"audio": pcm, "onsets": onsets, "velocity": velocity}


def make_model(config) -> model_lib.Transcriber:
    """The run config's transcriber (`runs.transcriber_config`)."""
    return runs.transcriber_config(config).make()


C = model_lib.NUM_CLASSES


def loss_fn(params, model, batch, model_config, loss_config):
    """(loss, {"onset_loss", "velocity_loss"}) of a batch (module docstring)."""
    features_BxTxF = model_lib.features(audio.from_pcm16(batch["audio"]), model_config)
    logits_BxTxC, velocity_BxTxC = model.apply(params, features_BxTxF)
    targets = batch["onsets"]
    pos_weight_C = jnp.broadcast_to(jnp.asarray(loss_config.pos_weight, jnp.float32), (C,))
    weights = 1.0 + (pos_weight_C.reshape(1, 1, C) - 1.0) * targets
    onset_loss = jnp.mean(weights * optax.sigmoid_binary_cross_entropy(logits_BxTxC, targets))
    mask = (targets == 1.0).astype(jnp.float32)
    squared = mask * jnp.square(velocity_BxTxC - batch["velocity"])
    velocity_loss = jnp.sum(squared) / jnp.maximum(jnp.sum(mask), 1.0)
    loss = onset_loss + loss_config.velocity_weight * velocity_loss
    return loss, {"onset_loss": onset_loss, "velocity_loss": velocity_loss}


def train_step(state, batch, model, model_config, loss_config):
    """One optimizer step on batch {"audio": (B, L) int16, "onsets", "velocity": (B, T, C)}.

    A plain function: `parallel.jit_step(functools.partial(train_step, model=..., ...), ...)`
    jits it for a mesh.

    Returns:
      The new state and metrics {"loss", "onset_loss", "velocity_loss", "grad_norm"}.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, parts), grads = grad_fn(state.params, model, batch, model_config, loss_config)
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, **parts, "grad_norm": optax.tree_utils.tree_norm(grads)}


def _dataset(config, split: str, shuffle: bool, num_epochs: int | None, shard=None):
    source = data.data_source(config.data.dataset, split, config.data.data_dir)
    ds = data.record_dataset(source, config.seed, shuffle, num_epochs, shard)
    targets = Targets(config.data.stem, config.model.hop_length, config.loss.neighbour)
    return ds.map(targets)


def peak_settings(config) -> dict:
    """Peak picking of a run (`config.inference`): threshold (per class) and min_distance."""
    threshold = np.broadcast_to(
        np.asarray(config.inference.threshold, np.float64), (model_lib.NUM_CLASSES,)
    )
    return {"threshold": threshold, "min_distance": int(config.inference.min_distance)}


def evaluation_steps(model, config, mesh=None) -> tuple[Callable, Callable]:
    """(loss, predict), jitted once, replicated on `mesh`: (params, batch) -> the validation
    loss; (params, audio (B, L)) -> (onset probabilities, velocities) per frame and class."""
    model_config = runs.transcriber_config(config)

    def loss(params, batch):
        return loss_fn(params, model, batch, model_config, config.loss)[0]

    def predict(params, audio_BxL):
        logits, velocity = model.apply(params, model_lib.features(audio_BxL, model_config))
        return jax.nn.sigmoid(logits), velocity

    return (
        parallel.replicated_evaluation(loss, mesh),
        parallel.replicated_evaluation(predict, mesh),
    )


def evaluate(params, model, config, mesh=None, steps=None) -> dict[str, float]:
    """Validation loss and transcription scores of whole songs (module docstring).

    Every process evaluates everything (`parallel.replicated_evaluation`); `steps` are
    `evaluation_steps` (built here if None).
    """
    model_config = runs.transcriber_config(config)
    loss_step, predict = steps or evaluation_steps(model, config, mesh)
    ds = _dataset(config, "validation", shuffle=False, num_epochs=1).batch(
        config.data.batch_size, drop_remainder=False
    )
    losses = [float(loss_step(params, batch)) for batch in ds]
    result = {"loss": float(np.mean(losses))} if losses else {}
    dataset = config.eval.dataset or config.data.dataset
    source = data.data_source(dataset, config.eval.split, config.data.data_dir)
    songs = data.songs(source, config.eval.max_songs)
    inference = config.inference
    estimates = []
    for song in songs:
        onset_TxC, velocity_TxC = model_lib.activations(
            functools.partial(predict, params),
            song.drums,
            model_config.hop_length,
            inference.chunk_frames,
            inference.context_frames,
            inference.batch_size,
        )
        estimates.append(
            model_lib.pick_peaks(
                onset_TxC, velocity_TxC, hop_length=model_config.hop_length, **peak_settings(config)
            )
        )
    scores = model_lib.score([song.drum_notes for song in songs], estimates)
    for name, row in scores["classes"].items():
        for key in ("f1", "precision", "recall"):
            result[f"{key}_{name}"] = row[key]
    result["f1"] = scores["all"]["f1"]
    result["velocity_error"] = scores["all"]["velocity_error"]
    logging.info(
        "%s %s (%d songs): onset F1 %s",
        dataset,
        config.eval.split,
        len(songs),
        ", ".join(f"{n} {r['f1']:.3f}" for n, r in scores["classes"].items()),
    )
    return result


def train_and_evaluate(config, workdir: str):
    """Trains the transcriber of `config` in `workdir` (resuming) and evaluates it."""
    model = make_model(config)
    model_config = runs.transcriber_config(config)
    frames = jnp.zeros((1, 8, model_config.num_features), jnp.float32)
    # On the host: the jitted init takes them as constants on every mesh.
    params = jax.device_get(model.init(jax.random.key(config.seed), frames))

    def train_data(shard, batch_size):
        ds = _dataset(config, "train", shuffle=True, num_epochs=None, shard=shard)
        return ds.batch(batch_size, drop_remainder=True)

    def evaluator(mesh):
        steps = evaluation_steps(model, config, mesh)
        return lambda state: evaluate(state.params, model, config, mesh, steps)

    state = common.fit(
        config,
        workdir,
        initial_state=lambda: train_state.TrainState.create(
            apply_fn=model.apply, params=params, tx=common.optimizer(config.opt)
        ),
        train_step=functools.partial(
            train_step, model=model, model_config=model_config, loss_config=config.loss
        ),
        train_data=train_data,
        evaluator=evaluator,
        learning_rate=common.learning_rate_schedule(config.opt),
    )
    logging.info("transcriber written to %s", os.path.abspath(os.fspath(workdir)))
    return state
