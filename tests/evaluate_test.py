"""`jdrum.evaluate` on an untrained tiny run with two LMs: every metric of every run, the files,
the table and the errors."""

import csv
import glob
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tiny_run

from jdrum import evaluate, metrics

NUM_CLIPS = 2
ALL_METRICS = list(metrics.METRIC_NAMES) + list(evaluate.TRUE_BEAT_METRICS)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(data_dir, run_dir): synthstems/tiny and a run with LMs `lm` and `lm_decoder_nobeat`."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tiny_run.build_dataset(data_dir)
    run = str(tmp_path_factory.mktemp("runs") / "tiny")
    written = tiny_run.make_tiny_run(run, data_dir, ("seq2seq_low", "decoder_nobeat"))
    assert written == {"lm": "seq2seq_low", "lm_decoder_nobeat": "decoder_nobeat"}
    return data_dir, run


@pytest.fixture(scope="module")
def evaluated(built, tmp_path_factory):
    """(result, labels, output_dir) of one evaluation of both LMs on the first test clips."""
    data_dir, run = built
    labels = [f"{run}:lm", f"{run}:lm_decoder_nobeat"]
    output_dir = str(tmp_path_factory.mktemp("evaluation"))
    result = evaluate.evaluate_runs(
        labels, tiny_run.DATASET, "test", data_dir, num_clips=NUM_CLIPS, output_dir=output_dir
    )
    return result, labels, output_dir


def test_every_metric_of_every_run_over_the_clips(evaluated):
    result, labels, _ = evaluated
    assert result["metrics"] == ALL_METRICS  # synthstems has true beats
    assert list(result["runs"]) == labels
    assert [result["runs"][label]["lm"] for label in labels] == ["lm", "lm_decoder_nobeat"]
    for label in labels:
        run = result["runs"][label]
        assert run["num_clips"] == NUM_CLIPS and len(run["clips"]) == NUM_CLIPS
        assert [clip["position"] for clip in run["clips"]] == list(range(NUM_CLIPS))
        for clip in run["clips"]:
            assert clip["song_id"].startswith("synthstems-")
            assert len(clip["takes"]) == 1 and clip["silent_takes"] == 0
            for name in ALL_METRICS:
                assert math.isfinite(clip[name]), (label, name, clip[name])
                assert clip[name] == clip["takes"][0][name]  # one take: its value
            assert clip["trackemb_mse"] > 0 and clip["act_entropy"] > 0
            for name in ("beat_f1", "downbeat_f1", *evaluate.TRUE_BEAT_METRICS):
                assert 0.0 <= clip[name] <= 1.0
        for name in ALL_METRICS:
            values = [clip[name] for clip in run["clips"]]
            stats = run["summary"][name]
            assert stats["count"] == NUM_CLIPS
            assert stats["mean"] == pytest.approx(np.mean(values))
            assert stats["std"] == pytest.approx(np.std(values))
    # The same clips for both runs; the real drums' tracking is scored once per clip.
    songs = [[c["song_id"] for c in result["runs"][label]["clips"]] for label in labels]
    assert songs[0] == songs[1]
    real = result["real_drums"]
    assert len(real["clips"]) == NUM_CLIPS
    assert set(real["summary"]) == set(evaluate.TRUE_BEAT_METRICS)


def test_table_has_a_row_per_run_and_a_column_per_metric(evaluated):
    result, labels, _ = evaluated
    lines = result["table"].splitlines()
    header = lines[1]
    for name in ALL_METRICS:
        assert evaluate.TITLES[name] in header
    for label in labels:
        (row,) = [line for line in lines if line.startswith(label + " ")]
        summary = result["runs"][label]["summary"]
        assert row.split()[1] == str(NUM_CLIPS)
        assert row.count("±") == len(ALL_METRICS)
        assert (
            f"{summary['trackemb_mse']['mean']:.4f} ± {summary['trackemb_mse']['std']:.4f}" in row
        )
    assert lines[-1].startswith("real drums vs true beats")


def test_json_and_csv_files(evaluated):
    result, labels, output_dir = evaluated
    assert result["files"] == {
        "json": os.path.join(output_dir, "evaluation.json"),
        "csv": os.path.join(output_dir, "evaluation.csv"),
    }
    with open(result["files"]["json"]) as f:
        saved = json.load(f)
    assert saved["dataset"] == tiny_run.DATASET and saved["split"] == "test"
    assert saved["num_clips"] == NUM_CLIPS and saved["num_takes"] == 1
    assert saved["runs"] == result["runs"]
    assert "table" not in saved and "files" not in saved
    with open(result["files"]["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    expected = ["run", "run_dir", "lm", "clips", "takes"]
    expected += [f"{name}_{stat}" for name in ALL_METRICS for stat in ("mean", "std")]
    assert list(rows[0]) == expected
    assert [row["run"] for row in rows] == labels
    for row in rows:
        summary = result["runs"][row["run"]]["summary"]
        assert int(row["clips"]) == NUM_CLIPS and int(row["takes"]) == 1
        for name in ALL_METRICS:
            assert float(row[f"{name}_mean"]) == pytest.approx(summary[name]["mean"])
            assert float(row[f"{name}_std"]) == pytest.approx(summary[name]["std"])


def test_run_values_name_the_lm(built):
    _, run = built
    assert evaluate.parse_run(run) == evaluate.RunSpec(run, run, "lm")
    other = f"{run}:lm_decoder_nobeat"
    assert evaluate.parse_run(other) == evaluate.RunSpec(other, run, "lm_decoder_nobeat")
    assert evaluate.parse_run(run, "lm_decoder_nobeat").lm == "lm_decoder_nobeat"


def test_missing_runs_are_clear_errors(built, tmp_path):
    data_dir, run = built
    missing = str(tmp_path / "nothing")
    with pytest.raises(evaluate.EvaluationError, match=r"nothing: no such run directory$"):
        evaluate.evaluate_runs([run, missing], tiny_run.DATASET, "test", data_dir)
    with pytest.raises(evaluate.EvaluationError, match=r"has no lm_gone/ \(a run needs"):
        evaluate.evaluate_runs([f"{run}:lm_gone"], tiny_run.DATASET, "test", data_dir)
    with pytest.raises(evaluate.EvaluationError, match="named twice"):
        evaluate.evaluate_runs([run, run], tiny_run.DATASET, "test", data_dir)
    # The command line: one line on stderr, no traceback.
    command = [sys.executable, "-m", "jdrum.evaluate", f"--run={missing}", "--dataset=synthstems"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 1
    assert (
        done.stderr.strip().splitlines()[-1] == f"jdrum.evaluate: {missing}: no such run directory"
    )
    assert "Traceback" not in done.stderr


def test_missing_datasets_and_splits_are_clear_errors(built, tmp_path):
    data_dir, run = built
    with pytest.raises(evaluate.EvaluationError, match=r"^synthstems/demo is not built in"):
        evaluate.evaluate_runs([run], "synthstems/demo", "test", data_dir)
    assert not glob.glob(os.path.join(data_dir, "synthstems", "demo", "*", "features.json"))
    with pytest.raises(evaluate.EvaluationError, match=r"has no split 'tset'; splits: train"):
        evaluate.evaluate_runs([run], tiny_run.DATASET, "tset", data_dir)
    with pytest.raises(evaluate.EvaluationError, match="unknown dataset 'nodata'"):
        evaluate.evaluate_runs([run], "nodata", "test", data_dir)
    with pytest.raises(evaluate.EvaluationError, match="num_takes >= 1"):
        evaluate.evaluate_runs([run], tiny_run.DATASET, "test", data_dir, num_takes=0)


def test_true_beat_scores_and_take_means():
    true = np.array([[0.5, 1], [1.0, 2], [1.5, 3], [2.0, 1]])
    assert evaluate.true_beat_metrics(true, true) == {"true_beat_f1": 1.0, "true_downbeat_f1": 1.0}
    shifted = evaluate.true_beat_metrics(true, true + [0.2, 0])  # beyond the 70 ms window
    assert shifted == {"true_beat_f1": 0.0, "true_downbeat_f1": 0.0}
    assert evaluate.true_beat_metrics(np.zeros((0, 2)), true) == {}  # no annotations
    assert evaluate.true_beat_metrics(true, np.zeros((0, 2)))["true_beat_f1"] == 0.0
    takes = [{"beat_f1": 0.5, "act_entropy": 1.0}, {"beat_f1": 1.0, "act_entropy": 3.0}]
    assert evaluate._mean_over_takes(takes) == {"beat_f1": 0.75, "act_entropy": 2.0}
    clips = [{"beat_f1": 0.0, "true_beat_f1": 1.0}, {"beat_f1": 1.0}]
    assert evaluate.summarise(clips, ["beat_f1", "true_beat_f1", "absent"]) == {
        "beat_f1": {"mean": 0.5, "std": 0.5, "count": 2},
        "true_beat_f1": {"mean": 1.0, "std": 0.0, "count": 1},
    }
    seeds = {evaluate.clip_seed(0, i) for i in range(100)} | {evaluate.clip_seed(1, 0)}
    assert len(seeds) == 101 and evaluate.clip_seed(0, 7) == evaluate.clip_seed(0, 7)
