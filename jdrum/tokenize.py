"""Writes the token records of a dataset with a run's two VQ-VAEs (DESIGN §3).

    python -m jdrum.tokenize --run runs/NAME --dataset synthstems/demo [--data_dir data/tfds]
    python -m jdrum.tokenize --run runs/NAME --dataset synthstems/demo --augment 4 [--seed 0]

reads `runs/NAME/vqvae_drums` and `runs/NAME/vqvae_drumless` and writes, for every split,
`runs/NAME/tokens/<dataset>/<split>.array_record` (see `jdrum.datasets.tokens`). `--augment N`
adds to every train record the drumless codes of N timbre augmentations of its drumless stem
(`jdrum.augment`), for LMs trained with `--config.data.augment=P`: the train split then takes
N + 2 encoder calls per batch instead of 2, plus the augmentation on the host. Without it the
records are those of earlier versions, bit for bit.

    python -m jdrum.tokenize --run runs/NAME --dataset synthstems/demo --tracker run:tracker

`--tracker NAME` ("madmom", "run:DIR", "da2:FILE"; a relative path is relative to the run
directory) computes the beat conditions with that tracker on every clip's drumless stem instead
of taking the tracker outputs stored in the clip records, and writes `runs/NAME/tracker.json`
naming it, so that sampling conditions the LM with the tracker it was trained with. Without
`--tracker`, a run with a `tracker.json` is tokenized with the tracker it names (else the
stored outputs are used, as before); a `--tracker` other than that one is refused.
"""

from __future__ import annotations

import sys

from absl import app, flags

from jdrum import console
from jdrum.datasets import tokens
from jdrum.inference import tokenizer

_RUN = flags.DEFINE_string("run", None, "Run directory holding vqvae_drums/ and vqvae_drumless/.")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset NAME[/CONFIG] to tokenize.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "Where the dataset is built.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Clips per jitted call.")
_AUGMENT = flags.DEFINE_integer(
    "augment", 0, "Augmented drumless views per train record (0: none).", lower_bound=0
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the augmentations.")
_TRACKER = flags.DEFINE_string(
    "tracker",
    None,
    "Tracker run on the drumless stems for the beat conditions, then named in the run's "
    "tracker.json: madmom, run:DIR or da2:FILE (relative to --run). Default: the one "
    "tracker.json names, else the clip records' stored outputs.",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _RUN.value or not _DATASET.value:
        raise app.UsageError("--run and --dataset are required")
    console.quiet_libraries()
    try:
        counts = tokenizer.tokenize(
            _RUN.value,
            _DATASET.value,
            _DATA_DIR.value,
            _BATCH.value,
            augment=_AUGMENT.value,
            seed=_SEED.value,
            tracker=_TRACKER.value,
        )
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"jdrum.tokenize: {error}")
    print(f"{tokens.token_dir(_RUN.value, _DATASET.value)}: {counts}")


if __name__ == "__main__":
    app.run(main)
