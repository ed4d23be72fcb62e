"""Objective evaluation of sampling runs on whole held-out songs: one table row a run, with
the ceiling, round-trip and floor rows and 95 % bootstrap intervals over songs.

    python -m jdrum.evaluate --run runs/demo:lm --run runs/demo:lm_seq2seq_nobeat \
        --dataset synthstems/eval [--split test] [--data_dir data/tfds] [--unit song] \
        [--max_songs 0 [--shortest]] [--num_takes 1] [--seed 0] [--tracker madmom] \
        [--vocoder auto] [--output DIR] [--verbosity 0]

A `--run` is a run directory (`vqvae_drums/`, `vqvae_drumless/`, the LM, optional `vocoder/`)
as `DIR`, using `DIR/lm` (`--lm`), or `DIR:LMSUBDIR`, using `DIR/LMSUBDIR`, so that the LMs of
one run directory can be compared. `--unit song` (default) evaluates whole songs, reassembled
from the split's clip records, with the pipeline's windowed generation; `--unit clip` each clip
record. `--vocoder` (`jdrum.inference.pipeline.Pipeline`): auto (each run's `vocoder/`,
HiFi-GAN V1 or Vocos, else Griffin-Lim), hifigan or vocos (the run's, which must be of that
kind), griffin-lim. What is measured and how: `jdrum.inference.evaluation`. Files:
`--output`/evaluation.json and evaluation.csv (default: the first run's directory).
"""

from __future__ import annotations

import sys

from absl import app, flags

from jdrum import console
from jdrum.inference import evaluation, pipeline

_RUN = flags.DEFINE_multi_string("run", None, "DIR or DIR:LMSUBDIR (repeatable).")
_DATASET = flags.DEFINE_string("dataset", None, "Built dataset NAME[/CONFIG].")
_SPLIT = flags.DEFINE_string("split", "test", "Split to evaluate on.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "Where the dataset is built.")
_LM = flags.DEFINE_string("lm", evaluation.DEFAULT_LM, "LM subdirectory of runs given as DIR.")
_UNIT = flags.DEFINE_enum("unit", "song", list(evaluation.UNITS), "Whole songs or clips.")
_MAX_SONGS = flags.DEFINE_integer("max_songs", 0, "First songs (by id) or clips; 0: all.")
_SHORTEST = flags.DEFINE_bool("shortest", False, "With --max_songs: the shortest songs.")
_NUM_TAKES = flags.DEFINE_integer("num_takes", 1, "Takes per song, sampled as one batch.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling PRNG seed.")
_TRACKER = flags.DEFINE_string(
    "tracker", "madmom", "Evaluation tracker (a jdrum.runs.tracker name)."
)
_VOCODER = flags.DEFINE_enum(
    "vocoder",
    "auto",
    list(pipeline.VOCODERS),
    "auto: vocoder/ (HiFi-GAN or Vocos) if any, else Griffin-Lim; hifigan, vocos: the run's, an "
    "error if it is of the other kind; griffin-lim.",
)
_OUTPUT = flags.DEFINE_string("output", None, "Folder of evaluation.{json,csv}; default: 1st run.")
flags.mark_flags_as_required(["run", "dataset"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    console.quiet_libraries()
    try:
        evaluation.evaluate_runs(
            _RUN.value,
            _DATASET.value,
            _SPLIT.value,
            _DATA_DIR.value,
            unit=_UNIT.value,
            max_songs=_MAX_SONGS.value,
            shortest=_SHORTEST.value,
            num_takes=_NUM_TAKES.value,
            seed=_SEED.value,
            tracker=_TRACKER.value,
            output_dir=_OUTPUT.value,
            lm=_LM.value,
            vocoder=_VOCODER.value,
        )
    except evaluation.EvaluationError as error:
        sys.exit(f"jdrum.evaluate: {error}")


if __name__ == "__main__":
    app.run(main)
