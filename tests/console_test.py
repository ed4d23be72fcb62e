"""jdrum.console: library chatter is hidden unless --verbosity is given; jdrum's own lines and
every warning stay."""

import logging
import os
import subprocess
import sys
import warnings

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import logging, sys, warnings
from absl import app, flags
from absl import logging as absl_logging
from jdrum import console
from jdrum.beat import metrics
OWN = flags.DEFINE_bool("own", False, "")

def main(argv):
    console.quiet_libraries(own_info=OWN.value)
    logging.getLogger("orbax").info("orbax chatter")
    logging.getLogger("jax._src.xla_bridge").warning("Unable to initialize backend 'tpu'")
    absl_logging.info("library info line")
    metrics.beat_f1([1.0, 2.0], [])
    logging.getLogger("orbax").warning("a real warning")
    warnings.warn("another warning")
    print("result line")

app.run(main)
"""


def _run(*flags_):
    command = [sys.executable, "-c", SCRIPT, *flags_]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("own", [False, True])
def test_chatter_is_hidden_by_default(own):
    done = _run(f"--own={own}")
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    assert "result line" in done.stdout
    for chatter in ("orbax chatter", "initialize backend", "library info line", "are empty"):
        assert chatter not in text, (chatter, text)
    assert "a real warning" in text and "another warning" in text


def test_verbosity_shows_it():
    done = _run("--verbosity=0")
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    for line in ("library info line", "initialize backend", "are empty", "result line"):
        assert line in text, (line, text)


def test_own_info_lines_stay_and_tfds_warnings_go():
    from jdrum import console

    def record(level, path):
        return logging.LogRecord("absl", level, path, 1, "message", None, None)

    tfds_file = os.path.join(os.sep, "x", "tensorflow_datasets", "core", "file_utils.py")
    own_only = console._QuietFilter(own_only=True)
    assert own_only.filter(record(logging.INFO, console.__file__))
    assert not own_only.filter(record(logging.INFO, warnings.__file__))
    assert own_only.filter(record(logging.WARNING, warnings.__file__))
    assert not own_only.filter(record(logging.WARNING, tfds_file))
    assert own_only.filter(record(logging.ERROR, tfds_file))
    assert console._QuietFilter(own_only=False).filter(record(logging.INFO, warnings.__file__))
