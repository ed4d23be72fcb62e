"""What the terminal shows: progress bars and results, not library chatter.

Entry points call `quiet_libraries()` at the start of `main`. Unless absl's own `--verbosity`
(`-v`) flag is given, it hides

* the libraries' INFO lines (TFDS's "Load dataset info", orbax's checkpoint lines, grain's), and
  jdrum's own too unless `own_info` (`python -m jdrum.train` keeps its step and resume lines);
* TFDS's warnings (e.g. "Variant folder ... has no dataset_info.json" before a first build);
* JAX's backend-probe warnings (e.g. "Unable to initialize backend 'tpu'", "An NVIDIA GPU may be
  present on this machine, but a CUDA-enabled jaxlib is not installed");
* mir_eval's "beats are empty" warnings (a side without beats scores 0, as documented in
  `jdrum.beat.metrics`).

`--verbosity 0` (or `-v 0`) shows INFO again, `-v 1` debug lines; warnings of every other
kind are always shown.
"""

from __future__ import annotations

import logging
import os
import warnings

from absl import flags
from absl import logging as absl_logging

QUIET_LOGGERS = ("jax._src.xla_bridge", "jax._src.compiler")  # JAX's backend probes
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class _QuietFilter(logging.Filter):
    """Drops TFDS's warnings (a first build's "Variant folder ... has no dataset_info.json"),
    and with `own_only` every INFO line not from jdrum's own files."""

    def __init__(self, own_only: bool):
        super().__init__()
        self.own_only = own_only

    def filter(self, record: logging.LogRecord) -> bool:
        path = os.path.abspath(record.pathname)
        if f"{os.sep}tensorflow_datasets{os.sep}" in path and record.levelno < logging.ERROR:
            return False
        return (
            record.levelno >= logging.WARNING or not self.own_only or path.startswith(_PACKAGE_DIR)
        )


def verbose_requested() -> bool:
    """Whether absl's --verbosity flag was given on the command line."""
    verbosity = flags.FLAGS["verbosity"] if "verbosity" in flags.FLAGS else None
    return bool(verbosity is not None and verbosity.present)


def quiet_libraries(own_info: bool = False, verbose: bool | None = None) -> None:
    """Hides library chatter (see the module docstring) unless `verbose` (default: whether
    `--verbosity` was given); `own_info` keeps jdrum's own INFO lines."""
    if verbose is None:
        verbose = verbose_requested()
    if verbose:
        return
    handler = absl_logging.get_absl_handler()
    for old in [f for f in handler.filters if isinstance(f, _QuietFilter)]:
        handler.removeFilter(old)
    handler.addFilter(_QuietFilter(own_only=own_info))
    if not own_info:
        absl_logging.set_verbosity(absl_logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*beats are empty", category=UserWarning)
