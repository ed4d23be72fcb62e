"""The vqvae stage of `jdrum.train`: a short run, SIGKILL and resume, timbre augmentation of
the train clips, tokenization (with augmented drumless views)."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import vqvae_drumless, vqvae_drums
from jdrum import audio, data, runs
from jdrum.datasets import tokens
from jdrum.inference import tokenizer
from jdrum.trainers import vqvae
from tests import tiny_run

ARGS = ["--config.model.width=16", "--config.data.batch_size=2", "--config.train.log_every=1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    data.builder("synthstems/tiny", data_dir).download_and_prepare()
    return data_dir


def _command(config, workdir, data_dir, num_steps):
    command = [sys.executable, "-m", "jdrum.train", "--config", config, f"--workdir={workdir}"]
    command += [f"--config.data.data_dir={data_dir}", "--config.data.dataset=synthstems/tiny"]
    return command + ARGS + [f"--config.train.num_steps={num_steps}"]


def _params(workdir):
    model, variables, stats = runs.load_vqvae(workdir)
    return jax.tree.map(np.asarray, variables), stats


# ~2.5 min: tracker_trainer_test kills and resumes the same train loop in `make test`.
@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_parameters(data_dir, tmp_path):
    config = "configs/vqvae_drums.py:tiny"
    steps, every = 30, "--config.train.checkpoint_every=3"
    straight = tmp_path / "straight"
    subprocess.run(_command(config, straight, data_dir, steps) + [every], check=True, timeout=600)
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(config, killed, data_dir, steps) + [every],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    checkpoints = killed / "checkpoints"
    while time.time() < deadline and process.poll() is None:
        done = [d for d in os.listdir(checkpoints) if d.isdigit()] if checkpoints.exists() else []
        if any(int(d) >= 6 for d in done):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    subprocess.run(_command(config, killed, data_dir, steps) + [every], check=True, timeout=600)
    (a, stats_a), (b, stats_b) = _params(straight), _params(killed)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    np.testing.assert_array_equal(stats_a.mean, stats_b.mean)


def test_run_keeps_train_split_mel_stats_and_tokenizes(data_dir, tmp_path):
    run = tmp_path / "run"
    for stem, config in (("drums", "vqvae_drums"), ("drumless", "vqvae_drumless")):
        command = _command(f"configs/{config}.py:tiny", run / f"vqvae_{stem}", data_dir, 3)
        subprocess.run(command, check=True, timeout=600)
    _, _, stats = runs.load_vqvae(run / "vqvae_drums")
    cfg = vqvae_drums.get_config("tiny")
    cfg.data.update(data_dir=str(data_dir), dataset="synthstems/tiny", batch_size=2)
    expected = vqvae.compute_mel_stats(cfg)
    np.testing.assert_allclose(stats.mean, expected.mean, rtol=1e-5)
    np.testing.assert_allclose(stats.std, expected.std, rtol=1e-5)

    counts = tokenizer.tokenize(str(run), "synthstems/tiny", str(data_dir), batch_size=4)
    source = data.data_source("synthstems/tiny", "validation", data_dir)
    assert counts["validation"] == len(source)
    token_records = tokens.token_source(str(run), "synthstems/tiny", "validation")
    record = token_records[0]
    n = 2**17 // 1024
    assert record["drum_codes"].shape == (n,) and record["drumless_codes"].shape == (n,)
    assert record["drum_codes"].max() < 32 and record["drumless_codes"].max() < 1024
    assert record["beat_low"].shape == (n, 50) and record["beat_high"].shape == (n,)
    clip = source[0]
    assert record["song_id"] == clip["song_id"].decode()
    # The codes are the drum VQ-VAE's encoding of the clip.
    model, variables, stats = runs.load_vqvae(run / "vqvae_drums")
    mel = stats.normalise(np.asarray(audio.log_mel(audio.from_pcm16(clip["drums"][None]))))
    codes = model.apply(variables, mel, method=model.encode)
    np.testing.assert_array_equal(np.asarray(codes)[0], record["drum_codes"])


def test_train_clips_are_augmented_with_the_configured_probability(data_dir):
    config = vqvae_drumless.get_config("tiny")
    config.data.update(data_dir=str(data_dir), dataset="synthstems/tiny")
    assert config.data.augment == 0.0  # off unless asked for
    count = 24
    plain = [vqvae.train_clips(config)[i]["audio"] for i in range(count)]
    config.data.augment = 1.0
    augmented = [vqvae.train_clips(config)[i]["audio"] for i in range(count)]
    for a, b in zip(plain, augmented, strict=True):
        assert b.dtype == np.int16 and b.shape == a.shape and (a != b).any()
    again = [vqvae.train_clips(config)[i]["audio"] for i in range(count)]  # a resumed run
    jax.tree.map(np.testing.assert_array_equal, again, augmented)
    config.data.augment = 0.5
    half = [vqvae.train_clips(config)[i]["audio"] for i in range(count)]
    changed = [(a != b).any() for a, b in zip(plain, half, strict=True)]
    assert 0 < sum(changed) < count


@pytest.fixture(scope="module")
def untrained_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("untrained_run")
    tiny_run.make_tiny_run(run, data_dir)
    return str(run)


def _records(run, split):
    return list(tokens.token_source(run, tiny_run.DATASET, split))


def test_tokenize_writes_augmented_drumless_views_of_the_train_split(data_dir, untrained_run):
    run = untrained_run
    tokenizer.tokenize(run, tiny_run.DATASET, str(data_dir), batch_size=4)
    plain = {split: _records(run, split) for split in ("train", "validation")}
    with open(tokens.token_path(run, tiny_run.DATASET, "validation"), "rb") as f:
        plain_validation = f.read()
    assert all(tokens.AUGMENTED not in r for records in plain.values() for r in records)

    tokenizer.tokenize(run, tiny_run.DATASET, str(data_dir), batch_size=4, augment=2, seed=3)
    with open(tokens.token_path(run, tiny_run.DATASET, "validation"), "rb") as f:
        assert f.read() == plain_validation  # other splits: byte for byte as before
    train = _records(run, "train")
    n = 2**17 // 1024
    for before, after in zip(plain["train"], train, strict=True):
        views = after.pop(tokens.AUGMENTED)
        assert views.shape == (2, n) and views.dtype == np.int32 and views.max() < 1024
        jax.tree.map(np.testing.assert_array_equal, after, before)  # the rest is unchanged
    with open(os.path.join(tokens.token_dir(run, tiny_run.DATASET), "info.json")) as f:
        assert json.load(f)["augment"] == 2

    # View k of the clip at position i: the drumless codes of augmentation (seed, i, k).
    source = data.data_source(tiny_run.DATASET, "train", data_dir)
    i = len(source) - 1
    pcm = np.asarray(source[i]["drumless"], np.int16)[None]
    expected = tokenizer.Tokenizer(run)("drumless", tokenizer.augmented_views(pcm, [i], 2, 3)[1])
    views = _records(run, "train")[i][tokens.AUGMENTED]
    np.testing.assert_array_equal(views[1], expected[0])
    assert (views[0] != views[1]).any() and (views[1] != train[i]["drumless_codes"]).any()
