"""The vocoder stage: HiFi-GAN V1 on the drum stem (REFERENCE §6).

Every training example is a random `segment_length`-sample segment of a clip's drum stem (the
record's mono int16 PCM / 32768; the reference's loader assumed stereo wavs, REFERENCE §10.17),
starting at a multiple of the mel hop, with the matching 32-frame window of a log10 mel as the
generator input:

* plain mode: the log10 mel of the real audio (`jdrum.audio.log_mel`), exactly the frames the
  whole clip's mel has there (the segment is cut with two frames of context on both sides);
* fine-tune mode (`config.data.vqvae_run` set): the drum VQ-VAE's reconstruction of the whole
  clip's mel (normalise → VQ-VAE → de-normalise), what the generator receives at inference.
  The reconstructions are computed once per split into `<workdir>/finetune_mels/`.

One jitted step updates the discriminators (MPD + MSD, LSGAN) on the generator's output and then
the generator (LSGAN + 2 × feature matching + 45 × mel L1 on the natural-log loss mel), each with
its own AdamW (2e-4, β (0.8, 0.99), weight decay 0.01) and exponential decay (0.999 per epoch,
per step). Evaluation vocodes whole validation clips and reports the loss-mel L1 against the real
audio, next to the same L1 for Griffin-Lim on the same mels.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import struct

from jdrum import audio, checkpoint, data, losses, parallel, vocode
from jdrum.models import hifigan
from jdrum.trainers import common

SPEC = audio.DEFAULT_SPECTROGRAM
CONTEXT_FRAMES = 2  # mel frames cut on both sides of a segment: 512 samples ≥ the 384 STFT pad


@struct.dataclass
class TrainState:
    step: jax.Array
    generator: Any  # weight-normalised generator params (v, g, bias)
    generator_opt: Any
    discriminator: Any  # MPD + MSD params
    discriminator_opt: Any
    spectral: Any  # the MSD's spectral-norm power-iteration vectors


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """AdamW with exponential decay, the same settings for generator and discriminators.

    The reference steps an ExponentialLR(`lr_decay`) once per epoch; here the rate decays
    smoothly per step: lr · lr_decay^(step / steps_per_epoch).
    """

    lr: float = 2e-4
    b1: float = 0.8
    b2: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.01
    lr_decay: float = 0.999
    steps_per_epoch: int = 1

    def schedule(self) -> optax.Schedule:
        return optax.exponential_decay(self.lr, max(self.steps_per_epoch, 1), self.lr_decay)

    def tx(self) -> optax.GradientTransformation:
        return optax.adamw(
            self.schedule(), b1=self.b1, b2=self.b2, eps=self.eps, weight_decay=self.weight_decay
        )


@dataclasses.dataclass(frozen=True)
class Models:
    """The static parts of a train step: modules, loss weights and the optimizer settings
    (hashable, so equal configs share compiled steps)."""

    generator: hifigan.Generator
    discriminator: hifigan.Discriminator
    optimizer: Optimizer = Optimizer()
    mel_weight: float = 45.0
    feature_matching_weight: float = 2.0
    adversarial_weight: float = 1.0
    discriminator_start: int = 0  # first steps: the generator on the mel L1 alone


def _dtype(name: str):
    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]


def make_generator(model_config, weight_norm: bool = True) -> hifigan.Generator:
    """The `Generator` of `config.model` (weight-normalised for training by default)."""
    return hifigan.Generator(
        upsample_initial_channel=model_config.upsample_initial_channel,
        upsample_rates=tuple(model_config.upsample_rates),
        upsample_kernel_sizes=tuple(model_config.upsample_kernel_sizes),
        resblock_kernel_sizes=tuple(model_config.resblock_kernel_sizes),
        resblock_dilations=tuple(tuple(d) for d in model_config.resblock_dilations),
        n_mels=model_config.n_mels,
        weight_norm=weight_norm,
        init_std=model_config.get("init_std") or None,
        dtype=_dtype(model_config.dtype),
    )


def make_models(config, steps_per_epoch: int | None = None) -> Models:
    """Modules, loss weights and optimizer of `config`; `steps_per_epoch` (see `Optimizer`)
    defaults to `config.opt.decay_steps` (1 when that is 0)."""
    generator = make_generator(config.model)
    if generator.hop_length != SPEC.hop_length:
        raise ValueError(
            f"the generator upsamples by {generator.hop_length}, the mel hop is {SPEC.hop_length}"
        )
    discriminator = hifigan.Discriminator(
        width_divisor=config.discriminator.width_divisor,
        periods=tuple(config.discriminator.periods),
        scales=config.discriminator.scales,
        dtype=_dtype(config.model.dtype),
    )
    opt = config.opt
    if steps_per_epoch is None:
        steps_per_epoch = opt.decay_steps or 1
    optimizer = Optimizer(
        opt.lr, opt.b1, opt.b2, opt.eps, opt.weight_decay, opt.lr_decay, steps_per_epoch
    )
    return Models(
        generator,
        discriminator,
        optimizer,
        config.loss.mel,
        config.loss.feature_matching,
        config.loss.adversarial,
        config.train.get("discriminator_start", 0),
    )


def _steps_per_epoch(config) -> int:
    if config.opt.decay_steps:
        return config.opt.decay_steps
    source = data.data_source(config.data.dataset, "train", config.data.data_dir)
    return max(len(source) // config.data.batch_size, 1)


# Initialisation draws with the "rbg" generator: on CPU it compiles in about half the time of
# the default threefry (a few hundred draws, one per parameter, dominate the init's compile
# time). Its bits may differ between backends; a run resumes from its checkpoint either way.
INIT_RNG = "rbg"


@functools.partial(jax.jit, static_argnums=(0, 1))
def _init_generator(generator: hifigan.Generator, seed: int):
    mel = jnp.zeros((1, generator.n_mels, 4), jnp.float32)
    key = jax.random.fold_in(jax.random.key(seed, impl=INIT_RNG), 0)
    return generator.init(key, mel)["params"]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _init_discriminator(discriminator: hifigan.Discriminator, seed: int):
    wave = jnp.zeros((1, 4096), jnp.float32)
    key = jax.random.fold_in(jax.random.key(seed, impl=INIT_RNG), 1)
    return discriminator.init(key, wave, train=True)


def _initial_state(config, models: Models, generator_params=None) -> TrainState:
    """A fresh state (for `parallel.create_state`); `generator_params` (weight-norm) replace the
    generator's initialisation."""
    if generator_params is None:
        g_params = _init_generator(models.generator, config.seed)
    else:
        g_params = jax.tree.map(jnp.asarray, generator_params)
    d_vars = _init_discriminator(models.discriminator, config.seed)
    tx = models.optimizer.tx()
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        generator=g_params,
        generator_opt=tx.init(g_params),
        discriminator=d_vars["params"],
        discriminator_opt=tx.init(d_vars["params"]),
        spectral=d_vars[hifigan.SPECTRAL],
    )
    return state


# ----------------------------------------------------------------------------------- data


class _Clips:
    """Random-access drum stems of a split, with their index (for the fine-tune mel cache)."""

    def __init__(self, source, stem: str):
        self._source, self._stem = source, stem

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict:
        return {"pcm": np.asarray(self._source[index][self._stem], np.int16), "index": index}


def _segments(
    config, mels: np.ndarray | None, num_epochs: int | None, batch_size=None, shard=None
) -> grain.MapDataset:
    """Batches {"excerpt": int16 (B, segment + 2·context)[, "mel": (B, n_mels, frames)]} of
    `batch_size` (default `config.data.batch_size`) from the records of `shard` (default all)."""
    source = data.data_source(config.data.dataset, "train", config.data.data_dir)
    hop, segment = SPEC.hop_length, config.data.segment_length
    if segment % hop:
        raise ValueError(f"segment_length {segment} is not a multiple of the hop {hop}")
    context = CONTEXT_FRAMES * hop
    frames = segment // hop

    def crop(record: dict, rng: np.random.Generator) -> dict:
        pcm = record["pcm"]
        if len(pcm) < segment:
            raise ValueError(f"a clip of {len(pcm)} samples is shorter than the segment {segment}")
        start_frame = int(rng.integers(0, (len(pcm) - segment) // hop + 1))
        padded = np.pad(pcm, context, mode="reflect")  # as the front end pads the whole clip
        start = start_frame * hop
        out = {"excerpt": padded[start : start + segment + 2 * context]}
        if mels is not None:
            out["mel"] = np.asarray(mels[record["index"], :, start_frame : start_frame + frames])
        return out

    clips = _Clips(source, config.data.stem)
    ds = data.record_dataset(clips, config.seed, True, num_epochs, shard)
    ds = ds.random_map(crop, seed=config.seed)
    return ds.batch(batch_size or config.data.batch_size, drop_remainder=True)


@functools.partial(jax.jit, static_argnums=0)
def _reconstruct(model, variables, mean, std, pcm_BxL):
    mel = audio.log_mel(audio.from_pcm16(pcm_BxL))
    normalised = (mel - mean[None, :, None]) / std[None, :, None]
    recon = model.apply(variables, normalised, train=False)[0]
    return recon * std[None, :, None] + mean[None, :, None]


def finetune_mels(config, split: str, workdir: str) -> np.ndarray:
    """The drum VQ-VAE's de-normalised reconstructions (clips, n_mels, frames) of a split,
    computed once into `<workdir>/finetune_mels/<split>.npy` (memory-mapped; recomputed when
    the VQ-VAE run, its latest step or the dataset change)."""
    from jdrum.trainers import vqvae as vqvae_trainer

    source = data.data_source(config.data.dataset, split, config.data.data_dir)
    directory = os.path.join(workdir, "finetune_mels")
    path = os.path.join(directory, f"{split}.npy")
    meta_path = path + ".json"
    vqvae_run = os.path.abspath(config.data.vqvae_run)
    step = checkpoint.manager(os.path.join(vqvae_run, "checkpoints")).latest_step()
    meta = {
        "vqvae_run": vqvae_run,
        "vqvae_step": step,
        "dataset": config.data.dataset,
        "clips": len(source),
    }
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path) as f:
            if json.load(f) == meta:
                return np.load(path, mmap_mode="r")
    model, variables, stats = vqvae_trainer.load(vqvae_run)
    mean, std = jnp.asarray(stats.mean), jnp.asarray(stats.std)
    num_frames = SPEC.num_frames(len(source[0][config.data.stem])) if len(source) else 0
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp.npy"
    shape = (len(source), config.model.n_mels, num_frames)
    mels = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    batch = config.data.batch_size
    logging.info("fine-tune mels of %d %s clips from %s", len(source), split, vqvae_run)
    for begin in range(0, len(source), batch):
        indices = range(begin, min(begin + batch, len(source)))
        pcm = np.stack([np.asarray(source[i][config.data.stem], np.int16) for i in indices])
        mels[begin : begin + len(indices)] = np.asarray(
            _reconstruct(model, variables, mean, std, pcm)
        )
    mels.flush()
    del mels
    os.replace(tmp, path)
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    return np.load(path, mmap_mode="r")


# ------------------------------------------------------------------------------ the step


def _inputs(batch):
    """(generator input mel (B, n_mels, frames), real audio (B, segment)) of a batch."""
    excerpt = audio.from_pcm16(batch["excerpt"])
    context = CONTEXT_FRAMES * SPEC.hop_length
    real = excerpt[:, context:-context]
    if "mel" in batch:
        return batch["mel"], real
    return audio.log_mel(excerpt, SPEC)[..., CONTEXT_FRAMES:-CONTEXT_FRAMES], real


def _split(outputs, n: int):
    """Splits discriminator outputs of a [real; fake] batch into (real, fake)."""
    real = jax.tree.map(lambda x: x[:n], outputs)
    fake = jax.tree.map(lambda x: x[n:], outputs)
    return real, fake


def train_step(state: TrainState, batch, models: Models):
    """Discriminator update on the current generator's output, then generator update; a plain
    function that `parallel.jit_step` jits for a mesh.

    Before step `models.discriminator_start` the discriminators are left alone and the
    generator descends the mel L1 alone (the adversarial and feature-matching metrics are 0).
    """
    mel, real = _inputs(batch)
    n = real.shape[0]
    real_mel = losses.loss_mel(real)
    tx = models.optimizer.tx()

    def generate(params):
        return models.generator.apply({"params": params}, mel)

    fake, generator_vjp = jax.vjp(generate, state.generator)

    def mel_l1_fn(fake_BxL):
        return jnp.mean(jnp.abs(real_mel - losses.loss_mel(fake_BxL)))

    def adversarial_update(_):
        def d_loss_fn(d_params):
            both = jnp.concatenate([real, jax.lax.stop_gradient(fake)])
            (scores, _), updates = models.discriminator.apply(
                {"params": d_params, hifigan.SPECTRAL: state.spectral},
                both,
                train=True,
                mutable=[hifigan.SPECTRAL],
            )
            real_scores, fake_scores = _split(scores, n)
            return losses.discriminator_loss(real_scores, fake_scores), updates[hifigan.SPECTRAL]

        (d_loss, spectral), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            state.discriminator
        )
        d_updates, d_opt = tx.update(d_grads, state.discriminator_opt, state.discriminator)
        d_params = optax.apply_updates(state.discriminator, d_updates)

        def g_loss_fn(fake_BxL):
            scores, fmaps = models.discriminator.apply(
                {"params": d_params, hifigan.SPECTRAL: spectral},
                jnp.concatenate([real, fake_BxL]),
                train=False,
            )
            _, fake_scores = _split(scores, n)
            real_fmaps, fake_fmaps = _split(fmaps, n)
            adversarial = losses.generator_adversarial_loss(fake_scores)
            matching = losses.feature_matching_loss(real_fmaps, fake_fmaps)
            mel_l1 = mel_l1_fn(fake_BxL)
            total = (
                models.adversarial_weight * adversarial
                + models.feature_matching_weight * matching
                + models.mel_weight * mel_l1
            )
            aux = {"adversarial": adversarial, "feature_matching": matching, "mel_l1": mel_l1}
            return total, aux

        (g_loss, aux), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
        aux = {
            **aux,
            "discriminator_loss": d_loss,
            "discriminator_grad_norm": optax.tree_utils.tree_norm(d_grads),
        }
        return g_loss, fake_grad, (d_params, d_opt, spectral), aux

    def mel_only_update(_):
        def g_loss_fn(fake_BxL):
            mel_l1 = mel_l1_fn(fake_BxL)
            return models.mel_weight * mel_l1, mel_l1

        (g_loss, mel_l1), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
        zero = jnp.zeros((), g_loss.dtype)
        aux = {
            "mel_l1": mel_l1,
            "adversarial": zero,
            "feature_matching": zero,
            "discriminator_loss": zero,
            "discriminator_grad_norm": zero,
        }
        discriminator = (state.discriminator, state.discriminator_opt, state.spectral)
        return g_loss, fake_grad, discriminator, aux

    if models.discriminator_start > 0:
        g_loss, fake_grad, discriminator, aux = jax.lax.cond(
            state.step >= models.discriminator_start, adversarial_update, mel_only_update, None
        )
    else:
        g_loss, fake_grad, discriminator, aux = adversarial_update(None)
    d_params, d_opt, spectral = discriminator
    (g_grads,) = generator_vjp(fake_grad)
    g_updates, g_opt = tx.update(g_grads, state.generator_opt, state.generator)
    state = state.replace(
        step=state.step + 1,
        generator=optax.apply_updates(state.generator, g_updates),
        generator_opt=g_opt,
        discriminator=d_params,
        discriminator_opt=d_opt,
        spectral=spectral,
    )
    metrics = {
        "loss": g_loss,
        **aux,
        "generator_grad_norm": optax.tree_utils.tree_norm(g_grads),
    }
    return state, metrics


# ------------------------------------------------------------------------------ evaluation


def _vocode_and_score(generator, params, mel_BxMxT, pcm_BxL):
    """(loss mel of the first generated clip (n_mels, T), loss-mel L1 per clip (B,)) for whole
    clips."""
    fake = generator.apply({"params": params}, mel_BxMxT)
    real = audio.from_pcm16(pcm_BxL)
    fake_mel = losses.loss_mel(fake)
    l1 = jnp.mean(jnp.abs(losses.loss_mel(real) - fake_mel), axis=(1, 2))
    return fake_mel[0], l1


@functools.lru_cache(maxsize=4)
def _scorer(mesh):
    """`_vocode_and_score` jitted for a mesh (None: default placement), shared by evaluators."""
    out_shardings = None if mesh is None else parallel.replicated(mesh)
    return jax.jit(_vocode_and_score, static_argnums=0, out_shardings=out_shardings)


@jax.jit
def _score(fake_BxL, pcm_BxL):
    real = audio.from_pcm16(pcm_BxL)
    return jnp.mean(jnp.abs(losses.loss_mel(real) - losses.loss_mel(fake_BxL)), axis=(1, 2))


@jax.jit
def _clip_mels(pcm_BxL):
    return audio.log_mel(audio.from_pcm16(pcm_BxL))


_GRIFFIN_LIM_L1: dict[tuple, float] = {}  # the baseline does not change during training


class Evaluator:
    """Vocodes the held-out clips (validation split, whole clips) and scores them.

    Returns `mel_l1` (the generator) and `griffin_lim_mel_l1` (Griffin-Lim on the same mels,
    computed once), both the mean over clips of the loss-mel L1 against the real audio, their
    ratio, and an image of the first clip's loss mel, real over generated.
    """

    def __init__(self, config, generator: hifigan.Generator, mels: np.ndarray | None, mesh=None):
        """`mesh`: the training mesh (the state's); every process evaluates the same clips,
        with the batches replicated over it."""
        self.config, self.generator, self.mels, self.mesh = config, generator, mels, mesh
        self._vocode_and_score = _scorer(mesh)
        source = data.data_source(config.data.dataset, "validation", config.data.data_dir)
        count = len(source)
        if config.eval.num_clips:
            count = min(count, config.eval.num_clips)
        self.source, self.count = source, count
        data_config = config.data
        self._griffin_lim_key = (
            data_config.dataset,
            os.path.abspath(data_config.data_dir),
            data_config.stem,
            os.path.abspath(data_config.vqvae_run) if data_config.vqvae_run else "",
            count,
            config.eval.griffin_lim_iters,
        )

    def _batches(self):
        size = self.config.eval.batch_size
        stem = self.config.data.stem
        for begin in range(0, self.count, size):
            indices = list(range(begin, min(begin + size, self.count)))
            pcm = np.stack([np.asarray(self.source[i][stem], np.int16) for i in indices])
            if self.mels is not None:
                mel = np.asarray(self.mels[indices[0] : indices[-1] + 1])
            else:
                mel = np.asarray(_clip_mels(pcm))
            yield pcm, mel

    def griffin_lim(self) -> float:
        """Griffin-Lim's loss-mel L1 on the same clips (computed once per process)."""
        if self._griffin_lim_key not in _GRIFFIN_LIM_L1:
            scores = []
            for pcm, mel in self._batches():
                wave = vocode.griffin_lim(mel, n_iter=self.config.eval.griffin_lim_iters)
                scores.append(np.asarray(_score(jnp.asarray(wave), pcm)))
            l1 = float(np.concatenate(scores).mean()) if scores else float("nan")
            _GRIFFIN_LIM_L1[self._griffin_lim_key] = l1
        return _GRIFFIN_LIM_L1[self._griffin_lim_key]

    def __call__(self, state: TrainState) -> dict:
        if not self.count:
            return {}
        scores, first = [], None
        for pcm, mel in self._batches():
            inputs = (mel, pcm) if self.mesh is None else parallel.replicate((mel, pcm), self.mesh)
            fake_mel, l1 = self._vocode_and_score(self.generator, state.generator, *inputs)
            scores.append(np.asarray(l1))
            if first is None:
                real_mel = losses.loss_mel(audio.from_pcm16(jnp.asarray(pcm[:1])))[0]
                first = np.concatenate([np.asarray(fake_mel), np.asarray(real_mel)], axis=0)
        mel_l1 = float(np.concatenate(scores).mean())
        griffin_lim = self.griffin_lim()
        return {
            "mel_l1": mel_l1,
            "griffin_lim_mel_l1": griffin_lim,
            "mel_l1_over_griffin_lim": mel_l1 / griffin_lim,
            "loss_mel_real_over_generated": first,
        }


# ------------------------------------------------------------------------------ entry points


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Trains the vocoder of `config` in `workdir`, resuming from its latest checkpoint.

    Devices: the state is created and the step jitted on the mesh of `config.mesh`
    (`jdrum.parallel`); each process reads its shard of the clips.
    """
    common.write_config(config, workdir)
    models = make_models(config, _steps_per_epoch(config))
    mesh = parallel.make_mesh(config.mesh)
    min_size = config.mesh.fsdp_min_size
    if checkpoint.manager(os.path.join(workdir, "checkpoints")).latest_step() is None:
        state, shardings = parallel.create_state(
            lambda: _initial_state(config, models), mesh, min_size
        )
    else:  # the checkpoint replaces every value; only the structure is needed
        state = _template(config, mesh)
        shardings = jax.tree.map(lambda x: x.sharding, state)
    step = parallel.jit_step(functools.partial(train_step, models=models), mesh, shardings)
    train_mels = valid_mels = None
    if config.data.vqvae_run:
        train_mels = finetune_mels(config, "train", workdir)
        valid_mels = finetune_mels(config, "validation", workdir)
    shard = grain.sharding.ShardByJaxProcess(drop_remainder=True)
    local_batch = parallel.local_batch_size(config.data.batch_size, mesh)
    train_iter = iter(_segments(config, train_mels, None, local_batch, shard))
    return common.train_loop(
        workdir=workdir,
        state=state,
        train_step=step,
        train_iter=train_iter,
        num_steps=config.train.num_steps,
        evaluate=Evaluator(config, models.generator, valid_mels, mesh),
        log_every=config.train.log_every,
        eval_every=config.train.eval_every,
        checkpoint_every=config.train.checkpoint_every,
        learning_rate=models.optimizer.schedule(),
    )


def _abstract(config) -> TrainState:
    """The train state's shapes and dtypes (nothing is initialised)."""
    models = make_models(config)
    return jax.eval_shape(lambda: _initial_state(config, models))


def _template(config, mesh) -> TrainState:
    """The train state's structure with its shardings on `mesh` (nothing is initialised)."""
    abstract = _abstract(config)
    shardings = parallel.state_shardings(abstract, mesh, config.mesh.fsdp_min_size)
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings
    )


def restore(workdir: str) -> TrainState:
    """The latest train state of a vocoder run."""
    config = ml_collections.ConfigDict(common.read_config(workdir))
    return checkpoint.restore_state(os.path.join(workdir, "checkpoints"), _abstract(config))


def load(workdir: str) -> tuple[hifigan.Generator, dict]:
    """(generator with folded weights, {"params": ...}) of a vocoder run, for inference."""
    config = ml_collections.ConfigDict(common.read_config(workdir))
    state = restore(workdir)
    params = jax.tree.map(np.asarray, hifigan.fold_weight_norm(state.generator))
    return make_generator(config.model, weight_norm=False), {"params": params}


def write_run(workdir: str, config, generator_params) -> None:
    """Writes a run directory (config.json + a step-0 checkpoint) with the given weight-norm
    generator params (e.g. the official generator converted by `jdrum.convert`) and freshly
    initialised discriminators; `load` and `jdrum.vocode` read it, training continues from it.

    Raises:
      ValueError: the params do not fit `config.model` (e.g. folded instead of weight-norm).
    """
    models = make_models(config)
    expected = _flat_shapes(jax.eval_shape(_init_generator, models.generator, config.seed))
    given = _flat_shapes(generator_params)
    if expected != given:
        unknown = sorted(set(given) - set(expected))[:5]
        missing = sorted(set(expected) - set(given))[:5]
        wrong = [k for k in expected if k in given and given[k] != expected[k]][:5]
        raise ValueError(
            "generator params do not fit config.model (weight-norm v, g, bias expected): "
            f"unknown {unknown}, missing {missing}, wrong shapes {wrong}"
        )
    common.write_config(config, workdir)
    state = _initial_state(config, models, generator_params)
    mngr = checkpoint.manager(os.path.join(workdir, "checkpoints"))
    checkpoint.save(mngr, 0, state)
    mngr.wait_until_finished()


def _flat_shapes(tree) -> dict[str, tuple]:
    return {
        jax.tree_util.keystr(path): tuple(np.shape(leaf))
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }
