"""The mel VQ-VAE stage: one model per stem (drums: 32 codes, drumless: 1024).

The log-mel is computed on the device from the clip audio, normalised with per-bin statistics
of the train split (computed once, kept in the train state and so in every checkpoint), and
reconstructed through the EMA-codebook bottleneck (loss: MSE + 0.02 commitment, REFERENCE
§2.4). The codebook statistics are a separate collection of the state, updated only in
training steps.

Timbre augmentation (`config.data.augment` = p > 0, meant for the drumless stem): each time a
train clip is read (so anew every epoch), with probability p its audio goes through a random
`jdrum.augment.augment` (EQ, compression, reverb, gain) on the host before the mel; the draws
are seeded by `config.seed` and the clip's position in the pipeline, so a resumed run reads the
same data. The mel statistics and the validation split use the plain audio.

Devices and data: `common.fit`.
"""

from __future__ import annotations

import functools
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from jdrum import audio, checkpoint, data, parallel, runs
from jdrum import augment as timbre
from jdrum.models import vqvae
from jdrum.trainers import common


class TrainState(train_state.TrainState):
    codebook: Any  # the quantizer's EMA statistics (not trained by gradients)
    mel_mean: jax.Array  # (n_mels,) normalisation statistics of the train split
    mel_std: jax.Array
    rng: jax.Array  # key of the codebook's random draws (init, dead-code restarts)


def make_model(config) -> vqvae.VQVAE:
    """The run config's VQ-VAE (`runs.vqvae_config`)."""
    return runs.vqvae_config(config).make()


def mel_stats(state) -> audio.MelStats:
    return audio.MelStats(mean=state.mel_mean, std=state.mel_std)


def _clips(
    config, split: str, shuffle: bool, num_epochs: int | None, shard=None
) -> grain.MapDataset:
    source = data.data_source(config.data.dataset, split, config.data.data_dir)
    ds = data.record_dataset(source, config.seed, shuffle, num_epochs, shard)
    stem = config.data.stem
    return ds.map(lambda record: {"audio": np.asarray(record[stem], np.int16)})


def augmented_audio(clip: dict, rng: np.random.Generator, probability: float) -> dict:
    """With `probability`, `clip` with its int16 audio through a random `timbre.augment`;
    otherwise `clip` itself."""
    if rng.random() < probability:
        clip = {**clip, "audio": timbre.augment_pcm16(clip["audio"], rng)}
    return clip


def train_clips(config, shard=None) -> grain.MapDataset:
    """The train split's clips, shuffled per epoch and repeated forever, augmented with
    probability `config.data.augment` (module docstring)."""
    ds = _clips(config, "train", shuffle=True, num_epochs=None, shard=shard)
    probability = float(config.data.get("augment", 0.0))
    if probability > 0:
        augment = functools.partial(augmented_audio, probability=probability)
        ds = ds.random_map(augment, seed=timbre.pipeline_seed(config.seed, shard))
    return ds


@functools.partial(jax.jit, static_argnames="spectrogram")
def _log_mel(pcm_BxL, spectrogram=audio.DEFAULT_SPECTROGRAM):
    return audio.log_mel(audio.from_pcm16(pcm_BxL), spectrogram)


def compute_mel_stats(config) -> audio.MelStats:
    """Per-bin mean / std over every frame of (up to `stats_clips`) train clips."""
    ds = _clips(config, "train", shuffle=True, num_epochs=1)
    if config.data.stats_clips:
        ds = ds[: config.data.stats_clips]
    ds = ds.batch(config.data.batch_size)
    accumulator = audio.MelStatsAccumulator()
    for batch in ds:
        accumulator.update(np.asarray(_log_mel(batch["audio"])))
    return accumulator.result()


def _normalised_mel(state, pcm_BxL):
    return mel_stats(state).normalise(_log_mel(pcm_BxL))


def train_step(state: TrainState, batch, model: vqvae.VQVAE):
    """One optimizer and codebook step on batch["audio"] (B, L) int16 PCM.

    A plain function: `parallel.jit_step(functools.partial(train_step, model=model), ...)`
    jits it for a mesh (tests may also `jax.jit` it with `static_argnums=2`).

    Returns:
      The new state and scalar metrics (losses, codebook statistics, grad_norm).
    """
    mel = _normalised_mel(state, batch["audio"])
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
        (_, aux), updates = model.apply(
            {"params": params, "codebook": state.codebook},
            mel,
            train=True,
            rngs={"codebook": rng},
            mutable=["codebook"],
        )
        return aux["loss"], (aux, updates["codebook"])

    (_, (aux, codebook)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, codebook=codebook)
    metrics = {k: v for k, v in aux.items() if jnp.ndim(v) == 0}
    metrics["grad_norm"] = optax.tree_utils.tree_norm(grads)
    return state, metrics


def _eval(state: TrainState, batch, model: vqvae.VQVAE):
    mel = _normalised_mel(state, batch["audio"])
    recon, aux = model.apply({"params": state.params, "codebook": state.codebook}, mel, train=False)
    return recon, mel, aux


def evaluate(state: TrainState, model, config, mesh=None) -> dict:
    """Losses over the whole validation split, codes in use, and one mel with its recon.

    Every process evaluates the whole split (`parallel.replicated_evaluation`).
    """
    ds = _clips(config, "validation", shuffle=False, num_epochs=1)
    ds = ds.batch(config.data.batch_size, drop_remainder=False)
    step = parallel.replicated_evaluation(_eval, mesh, static_argnums=(2,))
    sums, count = {}, 0
    used = np.zeros(config.model.codebook_size, bool)
    first = None
    for batch in ds:
        recon, mel, aux = step(state, batch, model)
        n = len(batch["audio"])
        for key in ("recon_loss", "commit_loss", "loss"):
            sums[key] = sums.get(key, 0.0) + float(aux[key]) * n
        used[np.asarray(aux["tokens"]).reshape(-1)] = True
        count += n
        if first is None:
            first = np.concatenate([np.asarray(mel)[0], np.asarray(recon)[0]], axis=0)
    result = {k: v / max(count, 1) for k, v in sums.items()}
    result["codes_used"] = float(used.sum())
    if first is not None:
        result["mel_input_over_reconstruction"] = first
    return result


def _blank_stats() -> audio.MelStats:
    n_mels = audio.DEFAULT_SPECTROGRAM.n_mels
    return audio.MelStats(np.zeros(n_mels, np.float32), np.ones(n_mels, np.float32))


def _initial_state(config, model, stats: audio.MelStats) -> TrainState:
    """The step-0 state (parameters by `config.seed`; float32 whatever `model.dtype`)."""
    rng_init, rng_codebook = jax.random.split(jax.random.key(config.seed))
    frames = 64
    dummy = jnp.zeros((1, audio.DEFAULT_SPECTROGRAM.n_mels, frames), jnp.float32)
    variables = model.init(rng_init, dummy, train=False)
    return TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        tx=common.optimizer(config.opt),
        codebook=variables["codebook"],
        mel_mean=jnp.asarray(stats.mean),
        mel_std=jnp.asarray(stats.std),
        rng=jax.random.key_data(rng_codebook),
    )


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Trains the VQ-VAE of `config` in `workdir`, resuming from its latest checkpoint."""
    model = make_model(config)
    if runs.latest_step(workdir) is None:
        logging.info("computing mel statistics of the train split")
        stats = compute_mel_stats(config)
    else:
        stats = _blank_stats()  # the checkpoint's statistics replace these

    def train_data(shard, batch_size):
        return train_clips(config, shard).batch(batch_size, drop_remainder=True)

    return common.fit(
        config,
        workdir,
        initial_state=lambda: _initial_state(config, model, stats),
        train_step=functools.partial(train_step, model=model),
        train_data=train_data,
        evaluator=lambda mesh: lambda s: evaluate(s, model, config, mesh),
        learning_rate=common.learning_rate_schedule(config.opt),
    )


def restore(workdir: str) -> TrainState:
    """The latest whole train state of a VQ-VAE run (inference loads `runs.load_vqvae`)."""
    config = runs.read_config(workdir)
    model = make_model(config)
    template = jax.eval_shape(lambda: _initial_state(config, model, _blank_stats()))  # shapes
    return checkpoint.restore_state(runs.checkpoint_dir(workdir), template)
