"""The vocoder train state, its optimizer settings and the modules of a config (the generator
that `config.model.generator` names: HiFi-GAN V1 or Vocos, `jdrum.runs.generator_config`)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jdrum import audio, data, frozen, runs
from jdrum.models import hifigan

SPEC = audio.DEFAULT_SPECTROGRAM


@struct.dataclass
class TrainState:
    step: jax.Array
    generator: Any  # generator params (HiFi-GAN: weight-normalised v, g, bias)
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

    generator: runs.Generator  # HiFi-GAN V1 or Vocos
    discriminator: hifigan.Discriminator
    optimizer: Optimizer = Optimizer()
    mel_weight: float = 45.0
    feature_matching_weight: float = 2.0
    adversarial_weight: float = 1.0
    discriminator_start: int = 0  # first steps: the generator on the mel L1 alone
    stft_weight: float = 0.0  # weight of `losses.stft_loss` (0: HiFi-GAN's losses only)


def make_models(config, steps_per_epoch: int | None = None) -> Models:
    """Modules (`runs.generator_config`, `hifigan.DiscriminatorConfig`), loss weights and
    optimizer of `config`; `steps_per_epoch` (see `Optimizer`) defaults to
    `config.opt.steps_per_epoch` (1 when that is 0)."""
    generator = runs.generator_config(config).make(weight_norm=True)
    if generator.hop_length != SPEC.hop_length:
        raise ValueError(
            f"the generator upsamples by {generator.hop_length}, the mel hop is {SPEC.hop_length}"
        )
    discriminator = frozen.from_mapping(
        hifigan.DiscriminatorConfig, config.discriminator, dtype=config.model.dtype
    ).make()
    opt = config.opt
    if steps_per_epoch is None:
        steps_per_epoch = opt.steps_per_epoch or 1
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
        config.loss.get("stft", 0.0),
    )


def steps_per_epoch(config) -> int:
    """`config.opt.steps_per_epoch`, or when 0 the train clips // batch size (one segment per
    clip and step)."""
    if config.opt.steps_per_epoch:
        return config.opt.steps_per_epoch
    source = data.data_source(config.data.dataset, "train", config.data.data_dir)
    return max(len(source) // config.data.batch_size, 1)


# Initialisation draws with the "rbg" generator: on CPU it compiles in about half the time of
# the default threefry (a few hundred draws, one per parameter, dominate the init's compile
# time). Its bits may differ between backends; a run resumes from its checkpoint either way.
INIT_RNG = "rbg"


@functools.partial(jax.jit, static_argnums=(0, 1))
def _init_generator(generator: runs.Generator, seed: int):
    mel = jnp.zeros((1, generator.n_mels, 4), jnp.float32)
    key = jax.random.fold_in(jax.random.key(seed, impl=INIT_RNG), 0)
    return generator.init(key, mel)["params"]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _init_discriminator(discriminator: hifigan.Discriminator, seed: int):
    wave = jnp.zeros((1, 4096), jnp.float32)
    key = jax.random.fold_in(jax.random.key(seed, impl=INIT_RNG), 1)
    return discriminator.init(key, wave, train=True)


def initial_state(config, models: Models, generator_params=None) -> TrainState:
    """A fresh state (for `parallel.create_state`); `generator_params` (weight-norm for HiFi-GAN)
    replace the generator's initialisation."""
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
