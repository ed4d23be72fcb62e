"""`python -m jdrum.build_dataset`: builds by name, refuses unknown names with one line."""

import subprocess
import sys

import numpy as np

from jdrum import data


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "jdrum.build_dataset", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_builds_synthstems_tiny(tmp_path):
    result = _run("synthstems/tiny", "--data_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "train:" in result.stdout and "validation:" in result.stdout
    source = data.data_source("synthstems/tiny", "validation", tmp_path)
    assert len(source) > 0 and source[0]["drums"].dtype == np.int16


def test_unknown_dataset_is_one_clear_line(tmp_path):
    result = _run("nosuchset", "--data_dir", str(tmp_path))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "unknown dataset 'nosuchset'" in last and "synthstems" in last
    assert "Traceback" not in result.stderr
