"""The tracker stage of `jdrum.train`: targets, a short run, resumption, the tiny acceptance."""

import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import tracker_drumless
from jdrum import data, parallel, runs
from jdrum.beat import dbn, features, metrics
from jdrum.datasets import synth
from jdrum.trainers import beat_tracker as tracker


def test_frame_targets_mark_beats_and_their_neighbours():
    beats = np.array([[0.10, 1.0], [0.55, 2.0]])
    targets = tracker.frame_targets(beats, 100)
    np.testing.assert_allclose(targets.sum(axis=-1), 1.0)
    np.testing.assert_allclose(targets[10], [0.0, 1.0, 0.0])  # downbeat
    np.testing.assert_allclose(targets[55], [0.0, 0.0, 1.0])  # beat
    np.testing.assert_allclose(targets[9], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(targets[56], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(targets[30], [1.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    data.builder("synthstems/tiny", data_dir).download_and_prepare()
    return data_dir


def _config(data_dir, num_steps, **train):
    config = tracker_drumless.get_config("tiny")
    config.data.data_dir = str(data_dir)
    config.data.batch_size = 2
    config.model.num_layers, config.model.hidden = 1, 8
    config.train.num_steps = num_steps
    config.train.update(log_every=1, checkpoint_every=2, **train)
    return config


def _params(workdir):
    return jax.tree.map(np.asarray, runs.load_tracker(workdir)[1])


def test_killed_run_resumes_to_the_same_parameters(data_dir, tmp_path, monkeypatch):
    tracker.train_and_evaluate(_config(data_dir, 6), str(tmp_path / "straight"))
    jit_step = parallel.jit_step
    calls = []

    def dies_at_step_5(*args, **kwargs):
        step = jit_step(*args, **kwargs)

        def run(state, batch):
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt("killed")
            return step(state, batch)

        return run

    monkeypatch.setattr(parallel, "jit_step", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        tracker.train_and_evaluate(_config(data_dir, 6), str(tmp_path / "killed"))
    monkeypatch.setattr(parallel, "jit_step", jit_step)
    tracker.train_and_evaluate(_config(data_dir, 6), str(tmp_path / "killed"))  # resumes at 4
    jax.tree.map(
        np.testing.assert_array_equal, _params(tmp_path / "straight"), _params(tmp_path / "killed")
    )


def test_entry_point_trains_and_loads(data_dir, tmp_path):
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "jdrum.train", "--config", "configs/tracker_drums.py:tiny"]
    command += [f"--workdir={workdir}", f"--config.data.data_dir={data_dir}"]
    command += [
        "--config.train.num_steps=2",
        "--config.model.hidden=4",
        "--config.data.batch_size=2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "eval/loss" in result.stderr
    saved = runs.read_config(workdir)
    assert saved.data.stem == "drums" and saved.model.hidden == 4
    model, params = runs.load_tracker(workdir)
    song = synth.make_song(1, synth.SynthConfig(min_seconds=4, max_seconds=4))
    x = features.madmom_features(song.drums)[None]
    probs = model.apply(params, x, method=model.probabilities)
    assert probs.shape == (1, x.shape[1], 3)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_tiny_drumless_tracker_finds_beats_in_held_out_songs(data_dir, tmp_path):
    """Acceptance: the :tiny distilled drumless tracker, beat F1 >= 0.8 on unseen songs."""
    config = tracker_drumless.get_config("tiny")
    config.data.data_dir = str(data_dir)
    tracker.train_and_evaluate(config, str(tmp_path / "tiny"))
    model, params = runs.load_tracker(tmp_path / "tiny")
    probs = jax.jit(lambda p, x: model.apply(p, x, method=model.probabilities))
    scores = []
    for seed in range(10_000, 10_020):  # seeds no synthstems config uses for training
        song = synth.make_song(seed, synth.SynthConfig(min_seconds=15, max_seconds=20))
        p = np.asarray(probs(params, features.madmom_features(song.drumless)[None]))[0]
        scores.append(metrics.beat_f1(song.beats[:, 0], dbn.decode(p)[:, 0]))
    assert np.mean(scores) >= 0.8, scores
