"""Objective evaluation of sampling runs on whole held-out songs: one table row a run, with
the ceiling, round-trip and floor rows and 95 % bootstrap intervals over songs.

    python -m jdrum.evaluate --run runs/demo:lm --run runs/demo:lm_seq2seq_nobeat \
        --dataset synthstems/eval [--split test] [--data_dir data/tfds] [--unit song] \
        [--max_songs 0 [--shortest]] [--num_takes 1] [--seed 0] [--tracker madmom] \
        [--vocoder auto] [--temperature T] [--top_p P] [--guidance W]
        [--sweep NAME=V,V,...] [--prime_bars 0] [--output DIR] [--verbosity 0]

A `--run` is a run directory (`vqvae_drums/`, `vqvae_drumless/`, the LM, optional `vocoder/`)
as `DIR`, using `DIR/lm` (`--lm`), or `DIR:LMSUBDIR`, using `DIR/LMSUBDIR`, so that the LMs of
one run directory can be compared. `--unit song` (default) evaluates whole songs, reassembled
from the split's clip records, with the pipeline's windowed generation; `--unit clip` each clip
record. `--vocoder` (`jdrum.inference.pipeline.Pipeline`): auto (each run's `vocoder/`,
HiFi-GAN V1 or Vocos, else Griffin-Lim), hifigan or vocos (the run's, which must be of that
kind), griffin-lim. `--temperature`, `--top_p` and `--guidance` (classifier-free guidance; the
LM must be trained with dropped conditions) override every run's sampling settings;
`--sweep guidance=1,1.5,2,3` (or temperature, top_p, top_k, overlap) gives every run one row per
value. With `--num_takes` >= 2 a table of the takes' diversity (token disagreement, Fréchet
distance between takes) and sampling seconds per take is added. `--prime_bars N` measures
priming ("continue my groove"): every run gets a twin row "<run> primed N bars" whose takes are
primed with each song's real drums up to its (N + 1)-th true downbeat (same songs, seeds and
settings), every row (ceiling, round trips and floors too) is scored only after that prime, and
a "Priming" block gives each run's TrackEmb-MSE, per-song Fréchet and B-F1 unprimed and primed
with the paired per-song difference; it needs a dataset with true downbeats.
What is measured and how: `jdrum.inference.evaluation`. Files:
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
_TEMPERATURE = flags.DEFINE_float("temperature", None, "Sampling temperature; default: each LM's.")
_TOP_P = flags.DEFINE_float("top_p", None, "Nucleus probability; default: each LM's.")
_GUIDANCE = flags.DEFINE_float("guidance", None, "Guidance weight W >= 0; default: each LM's.")
_SWEEP = flags.DEFINE_string(
    "sweep", None, "NAME=V,V,...: one row per run and value of a sampling setting."
)
_PRIME_BARS = flags.DEFINE_integer(
    "prime_bars",
    0,
    "N > 0: a twin of every run primed with each song's first N bars of real drums (to its "
    "(N+1)-th true downbeat), and every row scored only after them; 0: no priming.",
)
_OUTPUT = flags.DEFINE_string("output", None, "Folder of evaluation.{json,csv}; default: 1st run.")
flags.mark_flags_as_required(["run", "dataset"])
INTEGERS = ("top_k", "overlap")  # the integer sampling settings


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    console.quiet_libraries()
    try:
        sweep = None
        if _SWEEP.value is not None:
            name, _, values = _SWEEP.value.partition("=")
            sweep = (name, [int(v) if name in INTEGERS else float(v) for v in values.split(",")])
    except ValueError:
        sys.exit(f"jdrum.evaluate: --sweep takes NAME=V,V,... numbers, got {_SWEEP.value}")
    overrides = {
        "temperature": _TEMPERATURE.value,
        "top_p": _TOP_P.value,
        "guidance": _GUIDANCE.value,
    }
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
            overrides={k: v for k, v in overrides.items() if v is not None},
            sweep=sweep,
            prime_bars=_PRIME_BARS.value,
        )
    except evaluation.EvaluationError as error:
        sys.exit(f"jdrum.evaluate: {error}")


if __name__ == "__main__":
    app.run(main)
