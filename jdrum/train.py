"""Trains one stage: `python -m jdrum.train --config configs/X.py --workdir runs/NAME/STAGE`.

`config.stage` picks the trainer; nested fields are overridden on the command line, e.g.
`--config.opt.lr=1e-4`, and a config file takes an argument after a colon,
`--config configs/tracker_drumless.py:tiny`. A run restarted with the same workdir resumes
from its latest checkpoint.

Many hosts: start the same command in every process with `--distributed` (or the env var
JDRUM_DISTRIBUTED=1); `jax.distributed.initialize` then finds the coordinator, the process
count and id from SLURM, Open MPI or a Cloud TPU VM, or from `--coordinator_address`,
`--num_processes` and `--process_id` (see launch/). `config.mesh` lays the devices out.
"""

from __future__ import annotations

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jdrum import console, parallel
from jdrum.trainers import beat_tracker, hifigan, lm, transcriber, vqvae

_CONFIG = config_flags.DEFINE_config_file("config", None, "Run configuration file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, logs, config).")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Join a multi-process run (jax.distributed); also JDRUM_DISTRIBUTED=1."
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 (default: from the environment)."
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes in the run (default: from the environment)."
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index (default: from the environment)."
)
flags.mark_flags_as_required(["config", "workdir"])


# config.stage -> the trainer's train_and_evaluate(config, workdir).
STAGES = {
    "lm": lm.train_and_evaluate,
    "tracker": beat_tracker.train_and_evaluate,
    "transcriber": transcriber.train_and_evaluate,
    "vocoder": hifigan.train_and_evaluate,
    "vqvae": vqvae.train_and_evaluate,
}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    console.quiet_libraries(own_info=True)
    if parallel.distributed_requested(_DISTRIBUTED.value):
        parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    config = _CONFIG.value
    logging.info(
        "process %d of %d, devices: %s", jax.process_index(), jax.process_count(), jax.devices()
    )
    if config.stage not in STAGES:
        raise app.UsageError(f"unknown stage {config.stage!r}; stages: {', '.join(STAGES)}")
    state = STAGES[config.stage](config, _WORKDIR.value)
    if jax.process_count() > 1 and state is not None:
        parallel.check_processes_agree(state)


if __name__ == "__main__":
    app.run(main)
