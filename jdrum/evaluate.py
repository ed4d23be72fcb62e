"""Objective evaluation of sampling runs on a dataset split: the Table-1 metrics, one row a run.

    python -m jdrum.evaluate --run runs/demo --run runs/demo:lm_decoder_nobeat \
        --dataset synthstems/demo --split test [--data_dir data/tfds] [--num_clips 0] \
        [--lm lm] [--num_takes 1] [--seed 0] [--tracker madmom] [--vocoder auto] [--output DIR]

A `--run` is a run directory (`vqvae_drums/`, `vqvae_drumless/`, the LM, optional `vocoder/`;
see `jdrum.pipeline`) as `DIR`, using `DIR/lm` (`--lm`), or `DIR:LMSUBDIR`, using
`DIR/LMSUBDIR`, so that the LMs of one run directory can be compared; a run's label is the value
as given.

For every clip of the split (the first `--num_clips`; 0: all) and every run, the clip's drumless
stem goes through `Pipeline.accompany`, which samples `--num_takes` drum takes in one batch (PRNG
seed from `--seed` and the clip's position, the same for every run). The evaluation tracker
(`--tracker`, a name of `jdrum.beat.tracking.load`; it need not be the run's own conditioning
tracker) then runs on each generated drum stem (the level-matched stem, not the mix) and on the
clip's real drum stem, and `jdrum.metrics` compares what it sees. A clip's value of a metric is
the mean over its takes; the table reports mean ± std (population std) over clips:

    run            the --run value
    clips          clips evaluated
    TrackEmb-MSE   (lower is better) MSE between the tracker embeddings of the generated and the
                   real drums (`metrics.trackemb_mse`)
    Act-Entropy    (lower is better) cross entropy of the generated drums' beat activations
                   against the real drums' (`metrics.act_entropy`, nats per frame)
    B-F1           (higher is better) F-measure (70 ms) of the beats tracked (DBN) on the
                   generated drums against those tracked on the real drums (`metrics.beat_f1`)
    DB-F1          (higher is better) the same for downbeats (`metrics.downbeat_f1`)
    true B-F1      (higher is better; datasets with beat annotations, e.g. synthstems) F-measure
                   of the beats tracked on the generated drums against the clip's true beats
    true DB-F1     the same for downbeats

With true beats, a line under the table gives true B-F1 / DB-F1 of the real drum stems: what
the tracker achieves on the dataset's own drums, the reference for those two columns.

Files written to `--output` (default: the first run's directory):

* `evaluation.json`: the settings, and per run its summary ({metric: mean, std, count}) and
  per-clip values (song id, clip index, the metrics, each take's metrics, silent takes);
* `evaluation.csv`: one row per run: run, run_dir, lm, clips, takes, then `<metric>_mean` and
  `<metric>_std` for every metric.

`evaluate_runs` is the library function (the demo calls it); `main` only parses flags.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import sys
import warnings

import numpy as np
import tqdm
from absl import app, flags

from jdrum import audio, data, metrics, pipeline
from jdrum.beat import conditions, tracking

TRUE_BEAT_METRICS = ("true_beat_f1", "true_downbeat_f1")
TITLES = {
    "trackemb_mse": "TrackEmb-MSE ↓",
    "act_entropy": "Act-Entropy ↓",
    "beat_f1": "B-F1 ↑",
    "downbeat_f1": "DB-F1 ↑",
    "true_beat_f1": "true B-F1 ↑",
    "true_downbeat_f1": "true DB-F1 ↑",
}
DEFAULT_LM = "lm"
RUN_PARTS = ("vqvae_drums", "vqvae_drumless")
JSON_NAME, CSV_NAME = "evaluation.json", "evaluation.csv"


class EvaluationError(ValueError):
    """A run or dataset that cannot be evaluated; the message is one line."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """A `--run` value: its label (the value as given), run directory and LM subdirectory."""

    label: str
    run_dir: str
    lm: str


def parse_run(value: str, default_lm: str = DEFAULT_LM) -> RunSpec:
    """`DIR` (LM `DIR/<default_lm>`) or `DIR:LMSUBDIR`, checked to be a complete run.

    Raises:
      EvaluationError: no such directory, or one without the VQ-VAEs or the LM.
    """
    value = os.fspath(value)
    run_dir, lm = value, default_lm
    if not os.path.isdir(value):
        head, sep, tail = value.rpartition(":")
        if sep and head and tail and os.sep not in tail:
            run_dir, lm = head, tail
    if not os.path.isdir(run_dir):
        raise EvaluationError(f"{value}: no such run directory")
    missing = [part for part in (*RUN_PARTS, lm) if not os.path.isdir(os.path.join(run_dir, part))]
    if missing:
        names = ", ".join(f"{part}/" for part in missing)
        raise EvaluationError(
            f"{value}: {run_dir} has no {names} (a run needs vqvae_drums/, vqvae_drumless/ "
            f"and the LM directory)"
        )
    return RunSpec(value, run_dir, lm)


def open_split(dataset: str, split: str, data_dir):
    """The records of a built dataset's split (`jdrum.data.data_source`), never building it.

    Raises:
      EvaluationError: unknown dataset or config, a dataset not built in `data_dir`, an unknown
        split.
    """
    data_dir = os.fspath(data_dir)
    try:
        builder = data.builder(dataset, data_dir)
    except ValueError as error:
        raise EvaluationError(str(error).splitlines()[0]) from None
    if not builder.is_prepared():
        raise EvaluationError(
            f"{dataset} is not built in {data_dir} (python -m jdrum.build_dataset {dataset} "
            f"--data_dir {data_dir})"
        )
    splits = list(builder.info.splits.keys())
    if split.partition("[")[0] not in splits:
        raise EvaluationError(f"{dataset} has no split {split!r}; splits: {', '.join(splits)}")
    return data.data_source(dataset, split, data_dir)


def clip_seed(seed: int, position: int) -> int:
    """The sampling seed of the clip at `position` (32 bits from `seed` and the position)."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


def take_metrics(emb_TxD, p_Tx3, real: dict, true_beats_Nx2) -> dict[str, float]:
    """The metrics of one generated drum stem from the tracker outputs on it and on the real
    drums (`real`: {"embedding", "probabilities", "beats"}); the true-beat F1s when
    `true_beats_Nx2` holds beats."""
    beats = conditions.dbn_high_beats(p_Tx3)
    with _quiet_empty_beats():
        values = metrics.clip_metrics(
            emb_TxD, p_Tx3, real["embedding"], real["probabilities"], beats, real["beats"]
        )
    values.update(true_beat_metrics(true_beats_Nx2, beats))
    return values


def true_beat_metrics(true_beats_Nx2, beats_Nx2) -> dict[str, float]:
    """{"true_beat_f1", "true_downbeat_f1"} of tracked beats against true beats, or {} when
    there are no true beats (a dataset without annotations)."""
    true_beats_Nx2 = np.asarray(true_beats_Nx2, np.float64).reshape(-1, 2)
    if not len(true_beats_Nx2):
        return {}
    beats_Nx2 = np.asarray(beats_Nx2, np.float64).reshape(-1, 2)
    with _quiet_empty_beats():
        return {
            "true_beat_f1": metrics.beat_f1(true_beats_Nx2[:, 0], beats_Nx2[:, 0]),
            "true_downbeat_f1": metrics.downbeat_f1(true_beats_Nx2, beats_Nx2),
        }


@contextlib.contextmanager
def _quiet_empty_beats():
    """Silences mir_eval's warning for a side without beats (its F1 is 0, as documented)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".* beats are empty", category=UserWarning)
        yield


def summarise(clips: list[dict], names) -> dict[str, dict[str, float]]:
    """{metric: {"mean", "std", "count"}} over the clips that report the metric."""
    summary = {}
    for name in names:
        values = [clip[name] for clip in clips if name in clip]
        if values:
            mean, std = metrics.summarise(values)
            summary[name] = {"mean": mean, "std": std, "count": len(values)}
    return summary


def _mean_over_takes(takes: list[dict]) -> dict[str, float]:
    return {name: float(np.mean([take[name] for take in takes])) for name in takes[0]}


def evaluate_runs(
    runs: list[str],
    dataset: str,
    split: str,
    data_dir,
    *,
    num_clips: int = 0,
    num_takes: int = 1,
    seed: int = 0,
    tracker: str = "madmom",
    output_dir=None,
    lm: str = DEFAULT_LM,
    vocoder: str = "auto",
    verbose: bool = True,
) -> dict:
    """Evaluates runs on the clips of a dataset split and writes evaluation.{json,csv}.

    Args:
      runs: `DIR` or `DIR:LMSUBDIR` values (see the module docstring); labels of the results.
      dataset: a built dataset NAME[/CONFIG].
      split: its split (e.g. "test").
      data_dir: where it is built.
      num_clips: the first `num_clips` clips of the split; 0: all.
      num_takes: drum takes per clip and run, sampled as one batch.
      seed: PRNG seed of the sampling.
      tracker: the evaluation tracker (`jdrum.beat.tracking.load` name).
      output_dir: where the files go; None: the first run's directory.
      lm: the LM subdirectory of runs given as plain `DIR`.
      vocoder: how every run makes drum audio (`pipeline.Pipeline`: "auto", "hifigan",
        "griffin-lim").
      verbose: show a progress bar over the clips and print the table.

    Returns:
      What evaluation.json holds: "dataset", "split", "data_dir", "num_clips", "num_takes",
      "seed", "tracker", "vocoder", "metrics" (the column names), "runs" ({label: {"run_dir", "lm",
      "num_clips", "summary", "clips"}}) and, with true beats, "real_drums" ({"summary",
      "clips"}); plus "table" (the printed text) and "files" ({"json", "csv"} paths).

    Raises:
      EvaluationError: a missing or incomplete run, a missing dataset or split, no clips, or
        bad counts.
    """
    if not runs:
        raise EvaluationError("no runs to evaluate")
    if num_clips < 0 or num_takes < 1:
        raise EvaluationError(f"need num_clips >= 0 and num_takes >= 1: {num_clips}, {num_takes}")
    specs = [parse_run(run, lm) for run in runs]
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"a run is named twice: {labels}")
    source = open_split(dataset, split, data_dir)
    count = len(source) if num_clips == 0 else min(num_clips, len(source))
    if count == 0:
        raise EvaluationError(f"{dataset} {split} has no clips")
    output_dir = os.fspath(output_dir if output_dir is not None else specs[0].run_dir)

    try:
        pipes = [pipeline.Pipeline(spec.run_dir, spec.lm, vocoder=vocoder) for spec in specs]
    except (FileNotFoundError, ValueError) as error:
        raise EvaluationError(str(error)) from None
    # Every take of every run and the real drums of a clip in one batch of the tracker.
    batch = len(specs) * num_takes + 1
    evaluator = dataclasses.replace(tracking.load(tracker), batch_size=batch)
    per_run = {spec.label: [] for spec in specs}
    real_clips = []
    bar = tqdm.tqdm(range(count), desc="evaluating", unit="clip", disable=not verbose)
    for position in bar:
        record = source[position]
        drumless = audio.from_pcm16(record["drumless"])
        drums = audio.from_pcm16(record["drums"])
        true_beats = np.asarray(record.get("true_beats", np.zeros((0, 2))), np.float64)
        ids = {
            "position": position,
            "song_id": _text(record["song_id"]),
            "clip_index": int(record["clip_index"]),
        }
        accompaniments = []
        for spec, pipe in zip(specs, pipes, strict=True):

            def show(stage, done, total, label=spec.label):
                bar.set_postfix_str(f"{label}: {stage} {done}/{total}")

            accompaniments.append(
                pipe.accompany(
                    drumless, num_takes=num_takes, seed=clip_seed(seed, position), progress=show
                )
            )
        bar.set_postfix_str("tracking")
        stems = np.concatenate([a.drums for a in accompaniments] + [drums[None]])
        embedding, probabilities = evaluator(stems)
        real_beats = conditions.dbn_high_beats(probabilities[-1])
        real = {"embedding": embedding[-1], "probabilities": probabilities[-1], "beats": real_beats}
        real_values = true_beat_metrics(true_beats, real_beats)
        if real_values:
            real_clips.append({**ids, **real_values})
        for r, (spec, accompaniment) in enumerate(zip(specs, accompaniments, strict=True)):
            takes = [
                take_metrics(embedding[i], probabilities[i], real, true_beats)
                for i in range(r * num_takes, (r + 1) * num_takes)
            ]
            per_run[spec.label].append(
                {
                    **ids,
                    **_mean_over_takes(takes),
                    "takes": takes,
                    "silent_takes": int(sum(accompaniment.silent)),
                    "retries": int(sum(accompaniment.retries)),
                }
            )
    bar.close()

    names = list(metrics.METRIC_NAMES)
    clips = [clip for run_clips in per_run.values() for clip in run_clips]
    if any(TRUE_BEAT_METRICS[0] in clip for clip in clips):
        names += list(TRUE_BEAT_METRICS)
    result = {
        "dataset": dataset,
        "split": split,
        "data_dir": os.fspath(data_dir),
        "num_clips": count,
        "num_takes": num_takes,
        "seed": seed,
        "tracker": tracker,
        "vocoder": vocoder,
        "metrics": names,
        "runs": {
            spec.label: {
                "run_dir": spec.run_dir,
                "lm": spec.lm,
                "num_clips": len(per_run[spec.label]),
                "summary": summarise(per_run[spec.label], names),
                "clips": per_run[spec.label],
            }
            for spec in specs
        },
    }
    if real_clips:
        result["real_drums"] = {
            "summary": summarise(real_clips, TRUE_BEAT_METRICS),
            "clips": real_clips,
        }
    table = format_table(result)
    files = write_files(result, output_dir)
    if verbose:
        print(table)
        print(f"Wrote {files['json']} and {files['csv']}")
    return {**result, "table": table, "files": files}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['mean']:.4f} ± {stats['std']:.4f}"


def format_table(result: dict) -> str:
    """The runs as a text table: run, clips, then mean ± std of every metric."""
    names = result["metrics"]
    header = ["run", "clips"] + [TITLES.get(name, name) for name in names]
    rows = [
        [label, str(run["num_clips"])] + [_cell(run["summary"].get(name)) for name in names]
        for label, run in result["runs"].items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])

    text = [
        f"{result['dataset']} {result['split']}: {result['num_clips']} clips, "
        f"{result['num_takes']} take(s) per clip, tracker {result['tracker']}",
        line(header),
        line(["-" * w for w in widths]),
        *map(line, rows),
    ]
    if "real_drums" in result:
        summary = result["real_drums"]["summary"]
        text.append(
            "real drums vs true beats: "
            + ", ".join(f"{TITLES[name]} {_cell(summary.get(name))}" for name in TRUE_BEAT_METRICS)
        )
    return "\n".join(text)


def write_files(result: dict, output_dir) -> dict[str, str]:
    """Writes evaluation.json (everything) and evaluation.csv (one row per run) to
    `output_dir`; returns {"json", "csv"} paths."""
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, JSON_NAME)
    with open(json_path, "w") as f:
        json.dump(result, f, indent=1, default=_json_default)
    csv_path = os.path.join(output_dir, CSV_NAME)
    names = result["metrics"]
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["run", "run_dir", "lm", "clips", "takes"]
            + [f"{name}_{stat}" for name in names for stat in ("mean", "std")]
        )
        for label, run in result["runs"].items():
            values = []
            for name in names:
                stats = run["summary"].get(name)
                values += ["", ""] if stats is None else [stats["mean"], stats["std"]]
            writer.writerow(
                [label, run["run_dir"], run["lm"], run["num_clips"], result["num_takes"]] + values
            )
    return {"json": json_path, "csv": csv_path}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ------------------------------------------------------------------------------- command line


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The command-line flags. Defined only when the module runs as a program, so that modules
    importing `evaluate_runs` (the demo, with its own --data_dir) keep their flag names."""
    fv = {"flag_values": flag_values}
    flags.DEFINE_multi_string("run", None, "DIR or DIR:LMSUBDIR (repeatable).", **fv)
    flags.DEFINE_string("dataset", None, "Built dataset NAME[/CONFIG].", **fv)
    flags.DEFINE_string("split", "test", "Split to evaluate on.", **fv)
    flags.DEFINE_string("data_dir", "data/tfds", "Where the dataset is built.", **fv)
    flags.DEFINE_string("lm", DEFAULT_LM, "LM subdirectory of runs given as plain DIR.", **fv)
    flags.DEFINE_integer("num_clips", 0, "First clips of the split; 0: all.", **fv)
    flags.DEFINE_integer("num_takes", 1, "Takes per clip, sampled as one batch.", **fv)
    flags.DEFINE_integer("seed", 0, "Sampling PRNG seed.", **fv)
    flags.DEFINE_string("tracker", "madmom", "Evaluation tracker (a tracking.load name).", **fv)
    flags.DEFINE_enum(
        "vocoder", "auto", list(pipeline.VOCODERS), "auto: vocoder/ if any, else Griffin-Lim.", **fv
    )
    flags.DEFINE_string("output", None, "Folder of evaluation.{json,csv}; default: 1st run.", **fv)
    flags.mark_flags_as_required(["run", "dataset"], **fv)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    try:
        evaluate_runs(
            f.run,
            f.dataset,
            f.split,
            f.data_dir,
            num_clips=f.num_clips,
            num_takes=f.num_takes,
            seed=f.seed,
            tracker=f.tracker,
            output_dir=f.output,
            lm=f.lm,
            vocoder=f.vocoder,
        )
    except EvaluationError as error:
        sys.exit(f"jdrum.evaluate: {error}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
