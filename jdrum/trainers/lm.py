"""The LM stage: teacher-forced cross-entropy of the drum codes, in bits per token.

Reads the token records of `python -m jdrum.tokenize` (drum codes, drumless codes and the
beat conditions on the token grid), trains `DrumLM` with dropout, evaluates the loss over the
whole validation split, and reports the drum tokens' unigram entropy next to it (a model that
ignores its inputs and context cannot beat that number).

Devices: the state is created and the step jitted on the mesh of `config.mesh`
(`jdrum.parallel`); `config.data.batch_size` is the global batch, of which every process reads
its share from its own shard of the train records.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from jdrum import checkpoint, data, parallel, tokens
from jdrum.beat import conditions
from jdrum.models import transformer
from jdrum.trainers import common


class TrainState(train_state.TrainState):
    rng: jax.Array  # key data of the dropout draws


def lm_config(model_config) -> transformer.LMConfig:
    """The model sub-config as the frozen `LMConfig`."""
    fields = {f.name for f in dataclasses.fields(transformer.LMConfig)}
    return transformer.LMConfig(**{k: v for k, v in model_config.items() if k in fields})


def make_model(model_config) -> transformer.DrumLM:
    return transformer.DrumLM(lm_config(model_config))


def token_run(config, workdir: str) -> str:
    return config.data.tokens or os.path.dirname(os.path.abspath(workdir))


def batch_of(record: dict, beat: str, high_dbn: str = "madmom") -> dict:
    """A token record as model inputs: drum, drumless and (if used) beat arrays (the high
    level decoded by the DBN `high_dbn`, `conditions.HIGH_DBNS`)."""
    out = {
        "drum": np.asarray(record["drum_codes"], np.int32),
        "drumless": np.asarray(record["drumless_codes"], np.int32),
    }
    if beat != "none":
        field = conditions.token_field(beat, high_dbn)
        out["beat"] = np.asarray(record[field], np.float32 if beat == "low" else np.int32)
    return out


def _records(config, run: str, split: str, shuffle: bool, num_epochs: int | None, shard=None):
    source = tokens.token_source(run, config.data.dataset, split)
    ds = data.record_dataset(source, config.seed, shuffle, num_epochs, shard)
    return ds.map(
        functools.partial(batch_of, beat=config.model.beat, high_dbn=config.model.high_dbn)
    )


def _apply(model, params, batch, deterministic, rngs=None):
    return model.apply(
        {"params": params},
        batch["drum"],
        batch["drumless"] if model.config.encoder else None,
        batch.get("beat"),
        deterministic=deterministic,
        rngs=rngs,
    )


def train_step(state: TrainState, batch, model: transformer.DrumLM):
    """One optimizer step on a batch of token records; a plain function that
    `parallel.jit_step` jits for a mesh. Returns the new state and scalar metrics."""
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
        logits = _apply(model, params, batch, False, {"dropout": rng})
        return transformer.loss_bits(logits, batch["drum"])

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, "grad_norm": optax.tree_utils.tree_norm(grads)}


def _eval(params, batch, model: transformer.DrumLM):
    """Summed bits and correct top-1 predictions over the batch's tokens."""
    logits = _apply(model, params, batch, True)
    bits = transformer.loss_bits(logits, batch["drum"]) * batch["drum"].size
    correct = jnp.sum(jnp.argmax(logits, -1) == batch["drum"])
    return bits, correct


eval_step = jax.jit(_eval, static_argnums=2)


def unigram_bits(config, run: str) -> float:
    """Entropy (bits) of the drum-token frequencies of the train split."""
    counts = np.zeros(config.model.vocab_size)
    for record in _records(config, run, "train", shuffle=False, num_epochs=1):
        counts += np.bincount(record["drum"], minlength=len(counts))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def evaluate(state: TrainState, model, config, run: str, mesh=None) -> dict:
    """Loss in bits per token and top-1 accuracy over the whole validation split (every
    process evaluates the whole split; with a `mesh` the batches are replicated over it)."""
    ds = _records(config, run, "validation", shuffle=False, num_epochs=1)
    step = eval_step
    if mesh is not None:
        step = jax.jit(_eval, static_argnums=2, out_shardings=parallel.replicated(mesh))
    bits = correct = count = 0.0
    for batch in ds.batch(config.data.batch_size, drop_remainder=False):
        placed = batch if mesh is None else parallel.replicate(batch, mesh)
        b, c = step(state.params, placed, model)
        bits, correct, count = bits + float(b), correct + float(c), count + batch["drum"].size
    return {"loss_bits": bits / max(count, 1), "accuracy": correct / max(count, 1)}


def _initial_state(config, model) -> TrainState:
    rng_init, rng_dropout = jax.random.split(jax.random.key(config.seed))
    c = model.config
    drum = jnp.zeros((1, c.n_ctx), jnp.int32)
    beat = None
    if c.beat == "low":
        beat = jnp.zeros((1, c.n_ctx, c.beat_features), jnp.float32)
    elif c.beat != "none":
        beat = drum
    variables = jax.jit(model.init)(rng_init, drum, drum if c.encoder else None, beat)
    return TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        tx=common.optimizer(config.opt),
        rng=jax.random.key_data(rng_dropout),
    )


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Trains the LM of `config` in `workdir`, resuming from its latest checkpoint."""
    common.write_config(config, workdir)
    model = make_model(config.model)
    run = token_run(config, workdir)
    tokens.token_source(run, config.data.dataset, "train")  # a clear error if missing
    mesh = parallel.make_mesh(config.mesh)
    state, shardings = parallel.create_state(
        lambda: _initial_state(config, model), mesh, config.mesh.fsdp_min_size
    )
    step = parallel.jit_step(functools.partial(train_step, model=model), mesh, shardings)
    shard = grain.sharding.ShardByJaxProcess(drop_remainder=True)
    ds = _records(config, run, "train", shuffle=True, num_epochs=None, shard=shard)
    local_batch = parallel.local_batch_size(config.data.batch_size, mesh)
    train_iter = iter(ds.batch(local_batch, drop_remainder=True))
    unigram = unigram_bits(config, run)

    def evaluate_with_reference(s):
        return {**evaluate(s, model, config, run, mesh), "unigram_bits": unigram}

    return common.train_loop(
        workdir=workdir,
        state=state,
        train_step=step,
        train_iter=train_iter,
        num_steps=config.train.num_steps,
        evaluate=evaluate_with_reference,
        log_every=config.train.log_every,
        eval_every=config.train.eval_every,
        checkpoint_every=config.train.checkpoint_every,
        learning_rate=common.learning_rate_schedule(config.opt),
    )


def restore(workdir: str) -> TrainState:
    """The latest train state of an LM run."""
    config = ml_collections.ConfigDict(common.read_config(workdir))
    model = make_model(config.model)
    template = jax.eval_shape(lambda: _initial_state(config, model))  # shapes only
    return checkpoint.restore_state(os.path.join(workdir, "checkpoints"), template)


def load(workdir: str):
    """(model, variables {"params"}, config) of a trained or converted LM run."""
    config = ml_collections.ConfigDict(common.read_config(workdir))
    state = restore(workdir)
    return make_model(config.model), {"params": state.params}, config


def write_run(workdir: str, config, variables) -> None:
    """Writes an LM run directory (config.json + a step-0 checkpoint) holding given weights,
    e.g. an official LM converted by `python -m jdrum.convert`."""
    common.write_config(config, workdir)
    state = _initial_state(config, make_model(config.model)).replace(params=variables["params"])
    mngr = checkpoint.manager(os.path.join(workdir, "checkpoints"))
    checkpoint.save(mngr, 0, state)
    mngr.wait_until_finished()


def config_from_lm(lm: transformer.LMConfig, variant: str = "seq2seq_low"):
    """A full run config around a given `LMConfig` (for converted checkpoints)."""
    from configs import lm as lm_configs

    config = lm_configs.get_config(variant, None)
    for field in dataclasses.fields(lm):
        config.model[field.name] = getattr(lm, field.name)
    config.sampling.overlap = lm.n_ctx // 2
    return config
