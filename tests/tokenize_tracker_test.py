"""`jdrum.tokenize --tracker`: beat conditions from a named tracker and the run's tracker.json."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import tracker_drumless
from jdrum import audio, checkpoint, data, runs
from jdrum.beat import conditions, features
from jdrum.datasets import tokens
from jdrum.inference import tokenizer
from tests import tiny_run

SPLIT = "validation"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    tiny_run.build_dataset(data_dir)
    return str(data_dir)


@pytest.fixture(scope="module")
def codecs(data_dir, tmp_path_factory):
    """A run directory holding the two (untrained) tiny VQ-VAEs, shared read-only."""
    run = tmp_path_factory.mktemp("codecs")
    tiny_run.make_tiny_run(run, data_dir)
    return str(run)


@pytest.fixture
def run(codecs, tmp_path):
    """A fresh run directory (no tokens, no tracker.json) with the VQ-VAEs and a randomly
    initialised tracker run in `tracker/`."""
    run = tmp_path / "run"
    run.mkdir()
    for stem_dir in runs.VQVAE_DIRS.values():
        os.symlink(os.path.join(codecs, stem_dir), run / stem_dir)
    config = tracker_drumless.get_config("tiny")
    model = runs.tracker_config(config).make()
    inputs = np.zeros((1, 8, features.NUM_FEATURES), np.float32)
    variables = model.init(jax.random.key(1), inputs)
    runs.write_config(config, str(run / "tracker"))
    checkpoint.save_fields(runs.checkpoint_dir(run / "tracker"), {"params": variables})
    return str(run)


def _records(run):
    return list(tokens.token_source(run, tiny_run.DATASET, SPLIT))


def _bytes(run):
    with open(tokens.token_path(run, tiny_run.DATASET, SPLIT), "rb") as f:
        return f.read()


def _info(run):
    with open(os.path.join(tokens.token_dir(run, tiny_run.DATASET), "info.json")) as f:
        return json.load(f)


def test_records_carry_the_named_trackers_conditions(run, data_dir):
    tokenizer.tokenize(run, tiny_run.DATASET, data_dir, batch_size=4)
    stored = _records(run)
    assert not os.path.exists(os.path.join(run, runs.TRACKER_FILE))
    assert "tracker" not in _info(run)

    tokenizer.tokenize(run, tiny_run.DATASET, data_dir, batch_size=4, tracker="run:tracker")
    assert runs.run_tracker_name(run) == f"run:{os.path.join(run, 'tracker')}"
    assert _info(run)["tracker"] == "run:tracker"
    retracked = _records(run)

    track = runs.tracker(runs.run_tracker_name(run))
    source = data.data_source(tiny_run.DATASET, SPLIT, data_dir)
    drumless_BxL = np.stack([audio.from_pcm16(source[i]["drumless"]) for i in range(len(source))])
    embedding, probabilities = track(drumless_BxL)
    for k, (before, after) in enumerate(zip(stored, retracked, strict=True)):
        expected = conditions.beat_conditions(
            embedding[k].astype(np.float16), probabilities[k], drumless_BxL.shape[1]
        )
        np.testing.assert_array_equal(after["beat_low"], expected["low"].astype(np.float16))
        np.testing.assert_array_equal(after["beat_mid"], expected["mid"])
        np.testing.assert_array_equal(after["beat_high"], expected["high"])
        np.testing.assert_array_equal(after["drum_codes"], before["drum_codes"])
        np.testing.assert_array_equal(after["drumless_codes"], before["drumless_codes"])
        assert not np.array_equal(after["beat_low"], before["beat_low"])


def test_tracker_json_names_the_tracker_of_later_tokenizations(run, data_dir):
    tokenizer.tokenize(run, tiny_run.DATASET, data_dir, batch_size=4, tracker="run:tracker")
    named = _bytes(run)
    tokenizer.tokenize(run, tiny_run.DATASET, data_dir, batch_size=4)  # tracker.json's
    assert _bytes(run) == named and _info(run)["tracker"] == "run:tracker"
    absolute = f"run:{os.path.join(run, 'tracker')}"  # the same tracker, spelt otherwise
    tokenizer.tokenize(run, tiny_run.DATASET, data_dir, batch_size=4, tracker=absolute)
    assert _bytes(run) == named
    with open(os.path.join(run, runs.TRACKER_FILE)) as f:
        assert json.load(f) == {"tracker": "run:tracker"}
    with pytest.raises(ValueError, match="contradicts"):
        tokenizer.tokenize(run, tiny_run.DATASET, data_dir, batch_size=4, tracker="madmom")


def test_unknown_tracker_fails_before_writing(run, data_dir):
    with pytest.raises(FileNotFoundError):
        tokenizer.tokenize(run, tiny_run.DATASET, data_dir, tracker="run:missing")
    assert not os.path.exists(tokens.token_dir(run, tiny_run.DATASET))
    assert not os.path.exists(os.path.join(run, runs.TRACKER_FILE))


def test_command_line_refuses_a_contradicting_tracker_in_one_line(run, data_dir):
    with open(os.path.join(run, runs.TRACKER_FILE), "w") as f:
        json.dump({"tracker": "run:tracker"}, f)
    command = [sys.executable, "-m", "jdrum.tokenize", f"--run={run}", f"--data_dir={data_dir}"]
    command += [f"--dataset={tiny_run.DATASET}", "--tracker=madmom"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jdrum.tokenize: tracker madmom contradicts")
