"""The LM stage: teacher-forced cross-entropy of the drum codes, in bits per token.

Reads the token records of `python -m jdrum.tokenize` (drum codes, drumless codes and the
beat conditions on the token grid), trains `DrumLM` with dropout, evaluates the loss over the
whole validation split, and reports the drum tokens' unigram entropy next to it (a model that
ignores its inputs and context cannot beat that number).

Timbre augmentation (`config.data.augment` = p > 0): each time a train record is read (so anew
every epoch), with probability p its drumless codes are replaced by one of its augmented views
(`drumless_codes_augmented`, written by `python -m jdrum.tokenize --augment N`), drawn
uniformly; the draws are seeded by `config.seed` and the record's position in the pipeline, so
a resumed run reads the same data. Validation is never augmented.

Classifier-free guidance (`config.train.drop_beat`, `drop_drumless`, `drop_both`): each train
example independently loses its beat condition only, its drumless condition only, or both, with
these probabilities (`condition_masks`); the model then also learns to predict without them,
which guided sampling needs (`jdrum.inference.sampling`, `--guidance`). All 0 (the default):
nothing is dropped and no random number is drawn for it. Validation keeps every condition.

Devices and data: `common.fit`.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from jdrum import augment as timbre
from jdrum import checkpoint, data, parallel, runs
from jdrum.beat import conditions
from jdrum.datasets import tokens
from jdrum.models import transformer
from jdrum.trainers import common


class TrainState(train_state.TrainState):
    rng: jax.Array  # key data of the dropout draws


def make_model(config) -> transformer.DrumLM:
    """The run config's LM (`runs.lm_config`)."""
    return runs.lm_config(config).make()


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


def augmented_drumless(record: dict, rng: np.random.Generator, probability: float) -> dict:
    """With `probability`, `record` with its drumless codes replaced by one of its augmented
    views (`tokens.AUGMENTED`), drawn uniformly; otherwise `record` itself."""
    if rng.random() < probability:
        views = record[tokens.AUGMENTED]
        record = {**record, "drumless_codes": views[rng.integers(len(views))]}
    return record


def _records(
    config,
    run: str,
    split: str,
    shuffle: bool,
    num_epochs: int | None,
    shard=None,
    augment: float = 0.0,
):
    source = tokens.token_source(run, config.data.dataset, split)
    if augment > 0 and len(source) and tokens.AUGMENTED not in source[0]:
        raise ValueError(
            f"{tokens.token_path(run, config.data.dataset, split)}: config.data.augment="
            f"{augment} needs augmented drumless views; tokenize with python -m "
            f"jdrum.tokenize --run {run} --dataset {config.data.dataset} --augment N"
        )
    ds = data.record_dataset(source, config.seed, shuffle, num_epochs, shard)
    if augment > 0:
        swap = functools.partial(augmented_drumless, probability=augment)
        ds = ds.random_map(swap, seed=timbre.pipeline_seed(config.seed, shard))
    return ds.map(
        functools.partial(batch_of, beat=config.model.beat, high_dbn=config.model.high_dbn)
    )


def train_records(config, run: str, shard=None):
    """The train split as model inputs: shuffled per epoch, repeated forever, with augmented
    drumless views swapped in with probability `config.data.augment` (module docstring).

    Raises:
      FileNotFoundError: no token records.
      ValueError: `config.data.augment` > 0 and the records have no augmented views.
    """
    augment = float(config.data.get("augment", 0.0))
    return _records(config, run, "train", True, None, shard, augment)


def condition_masks(key, batch_size: int, probabilities) -> tuple[jax.Array, jax.Array]:
    """(keep_beat, keep_drumless) (N,) float32 masks: example i drops the beat condition only,
    the drumless condition only, or both, with the three `probabilities`, else keeps both."""
    u = jax.random.uniform(key, (batch_size,))
    p_beat, p_drumless, p_both = probabilities
    beat_only = u < p_beat
    drumless_only = (u >= p_beat) & (u < p_beat + p_drumless)
    both = (u >= p_beat + p_drumless) & (u < p_beat + p_drumless + p_both)
    keep_beat = ~(beat_only | both)
    keep_drumless = ~(drumless_only | both)
    return keep_beat.astype(jnp.float32), keep_drumless.astype(jnp.float32)


def _apply(model, params, batch, deterministic, rngs=None, keep=(None, None)):
    return model.apply(
        {"params": params},
        batch["drum"],
        batch["drumless"] if model.config.encoder else None,
        batch.get("beat"),
        deterministic=deterministic,
        keep_beat=keep[0],
        keep_drumless=keep[1],
        rngs=rngs,
    )


def train_step(state: TrainState, batch, model: transformer.DrumLM, drops=(0.0, 0.0, 0.0)):
    """One optimizer step on a batch of token records; a plain function that
    `parallel.jit_step` jits for a mesh. `drops`: `runs.condition_drops`. Returns the new state
    and scalar metrics."""
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    keep = (None, None)
    if any(drops):
        # A stream of its own: the dropout draws are those of a run without dropping.
        keep = condition_masks(jax.random.fold_in(rng, 1), batch["drum"].shape[0], drops)

    def loss_fn(params):
        logits = _apply(model, params, batch, False, {"dropout": rng}, keep)
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


def unigram_bits(config, run: str) -> float:
    """Entropy (bits) of the drum-token frequencies of the train split."""
    counts = np.zeros(config.model.vocab_size)
    for record in _records(config, run, "train", shuffle=False, num_epochs=1):
        counts += np.bincount(record["drum"], minlength=len(counts))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def evaluate(state: TrainState, model, config, run: str, mesh=None) -> dict:
    """Loss in bits per token and top-1 accuracy over the whole validation split (every
    process evaluates the whole split; `parallel.replicated_evaluation`)."""
    ds = _records(config, run, "validation", shuffle=False, num_epochs=1)
    step = parallel.replicated_evaluation(_eval, mesh, static_argnums=(2,))
    bits = correct = count = 0.0
    for batch in ds.batch(config.data.batch_size, drop_remainder=False):
        b, c = step(state.params, batch, model)
        bits, correct, count = bits + float(b), correct + float(c), count + batch["drum"].size
    return {"loss_bits": bits / max(count, 1), "accuracy": correct / max(count, 1)}


def _initial_state(config, model) -> TrainState:
    rng_init, rng_dropout = jax.random.split(jax.random.key(config.seed))
    variables = jax.jit(model.init)(rng_init, *model.config.example_inputs())
    return TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        tx=common.optimizer(config.opt),
        rng=jax.random.key_data(rng_dropout),
    )


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Trains the LM of `config` in `workdir`, resuming from its latest checkpoint."""
    model = make_model(config)
    drops = runs.condition_drops(config)
    run = token_run(config, workdir)
    train_records(config, run)  # a clear error if the records (or their views) are missing
    unigram = unigram_bits(config, run)

    def train_data(shard, batch_size):
        ds = train_records(config, run, shard)
        return ds.batch(batch_size, drop_remainder=True)

    def evaluator(mesh):
        return lambda s: {**evaluate(s, model, config, run, mesh), "unigram_bits": unigram}

    return common.fit(
        config,
        workdir,
        initial_state=lambda: _initial_state(config, model),
        train_step=functools.partial(train_step, model=model, drops=drops),
        train_data=train_data,
        evaluator=evaluator,
        learning_rate=common.learning_rate_schedule(config.opt),
    )


def restore(workdir: str) -> TrainState:
    """The latest whole train state of an LM run (inference loads `runs.load_lm`)."""
    config = runs.read_config(workdir)
    template = jax.eval_shape(lambda: _initial_state(config, make_model(config)))  # shapes only
    return checkpoint.restore_state(runs.checkpoint_dir(workdir), template)
