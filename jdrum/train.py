"""Trains one stage: `python -m jdrum.train --config configs/X.py --workdir runs/NAME/STAGE`.

`config.stage` picks the trainer; nested fields are overridden on the command line, e.g.
`--config.opt.lr=1e-4`, and a config file takes an argument after a colon,
`--config configs/tracker_drumless.py:tiny`. A run restarted with the same workdir resumes
from its latest checkpoint.
"""

from __future__ import annotations

import jax
from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Run configuration file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, logs, config).")
flags.mark_flags_as_required(["config", "workdir"])


def _tracker(config, workdir):
    from jdrum.trainers import tracker

    return tracker.train_and_evaluate(config, workdir)


def _vqvae(config, workdir):
    from jdrum.trainers import vqvae

    return vqvae.train_and_evaluate(config, workdir)


# config.stage -> trainer; each imports its own modules only when it runs.
STAGES = {"tracker": _tracker, "vqvae": _vqvae}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    logging.info(
        "process %d of %d, devices: %s", jax.process_index(), jax.process_count(), jax.devices()
    )
    if config.stage not in STAGES:
        raise app.UsageError(f"unknown stage {config.stage!r}; stages: {', '.join(STAGES)}")
    STAGES[config.stage](config, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
