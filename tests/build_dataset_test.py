"""`python -m jdrum.build_dataset`: builds by name, refuses unknown names with one line, and
builds splits larger than TFDS's in-memory shuffle buffer without TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest

from jdrum import data


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "jdrum.build_dataset", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    result = _run("synthstems/tiny", "--data_dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert "train:" in result.stdout and "validation:" in result.stdout
    return data_dir


def test_builds_synthstems_tiny(tiny_dir):
    source = data.data_source("synthstems/tiny", "validation", tiny_dir)
    assert len(source) > 0 and source[0]["drums"].dtype == np.int16


def test_splits_past_the_shuffle_buffer_build_without_tensorflow(tiny_dir, tmp_path, monkeypatch):
    """With a 0-byte buffer every example goes through TFDS's on-disk shuffle buckets (what a
    split over 1 GB does), which call tf.io.gfile; the records are those of a normal build."""
    from tensorflow_datasets.core import shuffle

    monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 0)
    data.builder("synthstems/tiny", tmp_path).download_and_prepare()
    for split in ("train", "validation"):
        spilled = data.data_source("synthstems/tiny", split, tmp_path)
        normal = data.data_source("synthstems/tiny", split, tiny_dir)
        assert len(spilled) == len(normal) > 0
        for i in (0, len(normal) - 1):
            assert spilled[i]["song_id"] == normal[i]["song_id"]
            np.testing.assert_array_equal(spilled[i]["drums"], normal[i]["drums"])


def test_unknown_dataset_is_one_clear_line(tmp_path):
    result = _run("nosuchset", "--data_dir", str(tmp_path))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "unknown dataset 'nosuchset'" in last and "synthstems" in last
    assert "Traceback" not in result.stderr


def test_num_workers_reaches_the_builder(tmp_path):
    """`--num_workers` is a build setting: the named config builds (here: finds no download),
    in the dataset's usual folder, instead of failing on a changed config."""
    result = _run("musdb18", "--data_dir", str(tmp_path), "--num_workers", "2",
                  "--manual_dir", str(tmp_path / "missing"))  # fmt: skip
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "missing: empty or missing folder; musdb18 expects a download" in last, last
    assert data.builder("musdb18", tmp_path, num_workers=2).num_workers == 2
