"""The lm stage of `jdrum.train` on token records: learns, evaluates, resumes, loads."""

import re

import jax
import numpy as np
import pytest

from configs import lm as lm_configs
from jdrum import runs
from jdrum.datasets import tokens
from jdrum.trainers import lm

DATASET = "fake/tokens"
LENGTH = 32


def _record(rng, index):
    """Drum codes that follow the beat: code = 1 + position in an 8-token bar, 0 off-beat."""
    phase = rng.integers(0, 8)
    position = (np.arange(LENGTH) + phase) % 8
    drum = np.where(position % 2 == 0, 1 + position // 2, 0)
    drum = np.where(rng.random(LENGTH) < 0.05, rng.integers(0, 8, LENGTH), drum)
    low = np.zeros((LENGTH, 50), np.float16)
    low[np.arange(LENGTH), position] = 1
    return {
        "drum_codes": drum.astype(np.int32),
        "drumless_codes": rng.integers(0, 64, LENGTH).astype(np.int32),
        "beat_low": low,
        "beat_mid": (position % 2 == 0).astype(np.int8),
        "beat_high": np.where(position % 2 == 0, 1 + position // 2, 0).astype(np.int8),
        "song_id": f"song{index}",
        "source": "fake",
        "clip_index": 0,
        "start_sample": 0,
    }


@pytest.fixture(scope="module")
def token_run(tmp_path_factory):
    run = str(tmp_path_factory.mktemp("run"))
    rng = np.random.default_rng(0)
    for split, count in (("train", 64), ("validation", 10)):
        tokens.write_records(run, DATASET, split, (_record(rng, i) for i in range(count)))
    return run


def _config(run, variant, steps):
    config = lm_configs.get_config(variant, "tiny")
    config.data.tokens, config.data.dataset, config.data.batch_size = run, DATASET, 8
    config.model.update(n_ctx=LENGTH, width=32, block_len=8, prime_vocab_size=64)
    config.model.update(prior_layers=10 if config.model.encoder else 3, prime_layers=3)
    config.train.update(num_steps=steps, log_every=10, eval_every=0, checkpoint_every=100)
    config.opt.warmup_steps, config.opt.lr = 10, 3e-3
    return config


def test_unigram_entropy_of_the_fake_tokens(token_run):
    config = _config(token_run, "seq2seq_low", 1)
    counts = np.zeros(32)
    for record in tokens.token_source(token_run, DATASET, "train"):
        counts += np.bincount(record["drum_codes"], minlength=32)
    p = counts[counts > 0] / counts.sum()
    assert lm.unigram_bits(config, token_run) == pytest.approx(float(-(p * np.log2(p)).sum()))


# seq2seq_low (~3 min: ten prior layers) in `make test-slow`; decoder_low (three) runs the same
# loop, evaluation and resume in `make test`.
@pytest.mark.parametrize(
    "variant", [pytest.param("seq2seq_low", marks=pytest.mark.slow), "decoder_low"]
)
def test_trains_below_the_unigram_entropy_and_resumes(token_run, tmp_path, variant):
    workdir = str(tmp_path / "lm")
    config = _config(token_run, variant, 200)
    state = lm.train_and_evaluate(config, workdir)
    model = lm.make_model(config)
    result = lm.evaluate(state, model, config, token_run)
    unigram = lm.unigram_bits(config, token_run)
    assert result["loss_bits"] < 0.6 * unigram, (result, unigram)
    # A longer run resumes from step 200 and leaves a loadable LM.
    config.train.num_steps = 210
    resumed = lm.train_and_evaluate(config, workdir)
    assert int(resumed.step) == 210
    model, variables, loaded = runs.load_lm(workdir)
    assert loaded.model.beat == config.model.beat
    jax.tree.map(np.testing.assert_array_equal, variables["params"], resumed.params)


def test_missing_tokens_are_a_clear_error(tmp_path):
    config = _config(str(tmp_path), "seq2seq_low", 1)
    with pytest.raises(FileNotFoundError, match="run python -m jdrum.tokenize first"):
        lm.train_and_evaluate(config, str(tmp_path / "lm"))


@pytest.fixture(scope="module")
def augmented_token_run(tmp_path_factory):
    """Train records with two augmented drumless views, all 100 and all 101 (the plain drumless
    codes are below 64), as `python -m jdrum.tokenize --augment 2` writes them."""
    run = str(tmp_path_factory.mktemp("augmented_run"))
    rng = np.random.default_rng(0)
    views = np.stack([np.full(LENGTH, 100), np.full(LENGTH, 101)]).astype(np.int32)
    train = ({**_record(rng, i), tokens.AUGMENTED: views} for i in range(16))
    tokens.write_records(run, DATASET, "train", train)
    return run


def _drumless(config, run, count):
    ds = lm.train_records(config, run)
    return np.stack([ds[i]["drumless"] for i in range(count)])


@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_train_records_read_the_augmented_views_with_the_configured_probability(
    augmented_token_run, probability
):
    config = _config(augmented_token_run, "seq2seq_low", 1)
    config.data.augment = probability
    drumless = _drumless(config, augmented_token_run, 160)  # ten epochs of 16 records
    from_views = np.isin(drumless, [100, 101]).all(axis=1)
    assert (from_views | (drumless < 64).all(axis=1)).all()  # a whole view or the plain codes
    assert from_views.mean() == pytest.approx(probability, abs=0.1)
    if probability == 1.0:  # both views, drawn uniformly
        assert (drumless[:, 0] == 100).mean() == pytest.approx(0.5, abs=0.15)
    # Seeded: a second pipeline (a resumed run) reads the same data.
    np.testing.assert_array_equal(_drumless(config, augmented_token_run, 160), drumless)


def test_augmentation_without_views_is_a_clear_error(token_run, tmp_path):
    config = _config(token_run, "seq2seq_low", 1)
    config.data.augment = 0.5
    path = tokens.token_path(token_run, DATASET, "train")
    message = (
        re.escape(f"{path}: config.data.augment=0.5 ") + ".*python -m jdrum.tokenize .*--augment N"
    )
    with pytest.raises(ValueError, match=message):
        lm.train_and_evaluate(config, str(tmp_path / "lm"))


def _corrupt(step_dir):
    """Overwrites every array data file of a checkpoint step with garbage of the same size."""
    files = [p for p in step_dir.glob("state/**/d/*") if p.is_file()]
    assert files
    for path in files:
        path.write_bytes(b"\x5a" * path.stat().st_size)


def test_resumes_from_the_step_before_an_unreadable_checkpoint(token_run, tmp_path, caplog):
    workdir = tmp_path / "lm"
    config = _config(token_run, "decoder_low", 4)
    config.train.checkpoint_every = 2
    lm.train_and_evaluate(config, str(workdir))
    _corrupt(workdir / "checkpoints" / "4")
    config.train.num_steps = 6
    with caplog.at_level("WARNING"):
        resumed = lm.train_and_evaluate(config, str(workdir))
    text = caplog.text
    assert "checkpoint step 4 cannot be read" in text and "resuming from step 2" in text, text
    assert int(resumed.step) == 6
    assert (workdir / "checkpoints" / "4.unreadable").is_dir()  # kept, not deleted
    _, variables, _ = runs.load_lm(workdir)
    jax.tree.map(np.testing.assert_array_equal, variables["params"], resumed.params)


def test_condition_masks_drop_with_the_configured_probabilities():
    keep_beat, keep_drumless = lm.condition_masks(jax.random.key(0), 200_000, (0.1, 0.2, 0.3))
    keep_beat, keep_drumless = np.asarray(keep_beat, bool), np.asarray(keep_drumless, bool)
    np.testing.assert_allclose(np.mean(~keep_beat & keep_drumless), 0.1, atol=0.005)
    np.testing.assert_allclose(np.mean(keep_beat & ~keep_drumless), 0.2, atol=0.005)
    np.testing.assert_allclose(np.mean(~keep_beat & ~keep_drumless), 0.3, atol=0.005)
    config = lm_configs.get_config("seq2seq_low", "tiny")
    assert runs.condition_drops(config) == (0.0, 0.0, 0.0)
    config.train.drop_both = 0.6
    config.train.drop_beat = 0.5
    with pytest.raises(ValueError, match="must be >= 0 and sum to at most 1"):
        runs.condition_drops(config)
