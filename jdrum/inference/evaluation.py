"""Objective evaluation of sampling runs on whole held-out songs, with bounds on every number.

The library behind `python -m jdrum.evaluate` and `make demo`:

    result = evaluate_runs(["runs/demo:lm", "runs/demo:lm_seq2seq_nobeat"],
                           "synthstems/eval", "test", "data/tfds")

A run is `DIR` (its LM `DIR/lm`) or `DIR:LMSUBDIR`. For every song of the split (`data.songs`:
the clip records reassembled into whole songs; `unit="clip"` takes the clips one by one
instead) and every run, the song's drumless stem goes through `Pipeline.accompany`, which
samples `num_takes` takes in one batch with windowed generation for any length (seed from
`seed` and the song's position, the same for every run). The evaluation tracker (`tracker`, a
`jdrum.runs.tracker` name) runs on every generated drum stem and on the real drum stem,
and `jdrum.beat.dbn.decode` (madmom's default DBN) decodes their beats over the whole song.

Metrics per take (`jdrum.beat.metrics`; a song's value is the mean over its takes):

* rhythm, against the song's true beats where the dataset has them, else against the beats
  tracked on its drumless stem: B-F1, DB-F1 (70 ms), CMLt, AMLt, tempo agreement (median
  inter-beat interval within 4 %; "x2/½" also accepts double and half tempo);
* the paper's Table 1, against the real drums of the song: TrackEmb-MSE, Act-Entropy, and B-F1
  / DB-F1 of the beats tracked on the generated drums against those tracked on the real drums;
* sound (`jdrum.sound`), against the real drums of the song: the multi-resolution STFT distance
  and onset F1 (50 ms), the low drone of the stem itself (its power below 150 Hz that stays
  for over 1 s, in dB of its mean power; compare it with the real drums' row), and its excess
  over the real drums' drone (dB; 0 for the real drums).

Reference rows, measured the same way:

* **ceiling**: the real drum stems;
* **round trips**: the real drum stems through the stages of each run directory, level-matched
  to the stem: its log-mel straight into Griffin-Lim ("real mel + Griffin-Lim") and into the
  run's neural vocoder if it has one ("real mel + Vocos"), and its drum VQ-VAE's reconstruction
  into each of them ("drum VQ-VAE + ..."): each stage on its own, and the whole chain, the best
  the LM can do with these codes and audio. Paired with the real stem, the sound block's STFT
  distance and onset F1 say what each stage loses;
* **floor**: each run's generated drums scored against another song's references (song i
  against song i - 1, cyclically; both cut to the shorter), i.e. chance.

Takes of one song (run rows with at least two takes; `take_values`): how different they are,
next to how good. `token_disagreement` is the fraction of token positions where two takes'
drum codes differ, `take_frechet` the Fréchet distance between two takes' tracker frame
embeddings (the feature of `frechet` below), both averaged over the pairs of takes of a song.
`seconds_per_take` is the song's sampling time (the LM's windows; each row's programs are
compiled on one second of noise before the first song) divided by its takes: what guidance or a
longer song costs.

Sampling settings: every run samples with its LM run's `config.sampling`, overridden by
`overrides` (e.g. {"temperature": 1.0, "guidance": 2.0}); `sweep` ("guidance", [1, 1.5, 2, 3])
gives every run one row per value of one `SamplingConfig` field, labelled "<run> guidance=2",
all on the same songs and seeds.

And one measure of a whole row, not of a song: `frechet`, the Fréchet distance between Gaussians
fitted to the evaluation tracker's frame embeddings (50 dimensions, 100 frames/s) of every take
of the row, pooled over songs, and to those of the same songs' real drums (0 for the real drums
themselves), with a 95 % bootstrap interval over songs (`frechet_summary`). It says how far the
generated drums sit from real ones as a population, where the per-song measures compare a take
with the one real drum part of its song. It has no floor row (another song's real drums are the
same pool).

Tables give the mean over songs with a 95 % bootstrap interval (`metrics.summarise`).
evaluation.json holds the settings, every row's summary and its per-song values; evaluation.csv
one line per row with the mean, the interval and the std of every metric.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import time

import numpy as np
import scipy.linalg
import tqdm

from jdrum import audio, data, runs, sound
from jdrum.beat import dbn, metrics
from jdrum.inference import pipeline, sampling

DEFAULT_LM = "lm"
RUN_PARTS = ("vqvae_drums", "vqvae_drumless")
JSON_NAME, CSV_NAME = "evaluation.json", "evaluation.csv"
UNITS = ("song", "clip")
TITLES = {
    "beat_f1": "B-F1 ↑",
    "downbeat_f1": "DB-F1 ↑",
    "cmlt": "CMLt ↑",
    "amlt": "AMLt ↑",
    "tempo": "tempo ↑",
    "tempo_octave": "tempo x2/½ ↑",
    "trackemb_mse": "TrackEmb-MSE ↓",
    "act_entropy": "Act-Entropy ↓",
    "drums_beat_f1": "B-F1 ↑",
    "drums_downbeat_f1": "DB-F1 ↑",
    "stft_distance": "STFT dist ↓",
    "onset_f1": "onset F1 ↑",
    "drone_db": "low drone dB ↓",
    "drone_excess_db": "drone excess dB ↓",
    "token_disagreement": "token disagreement",
    "take_frechet": "Fréchet between takes",
    "seconds_per_take": "s per take",
}
TAKE_NAMES = ("token_disagreement", "take_frechet", "seconds_per_take")
METRIC_NAMES = metrics.METRIC_NAMES + sound.SOUND_NAMES
CEILING, ROUND_TRIP, FLOOR = "ceiling", "round trip", "floor"


class EvaluationError(ValueError):
    """A run or dataset that cannot be evaluated; the message is one line."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """A run value: its label (the value as given), run directory and LM subdirectory."""

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


def load_songs(
    source, unit: str = "song", max_songs: int = 0, shortest: bool = False
) -> list[data.Song]:
    """What is evaluated: whole songs (`data.songs`) or, with unit "clip", every clip record
    as it is (id "<song id>#<clip index>"); the first `max_songs` (0: all), or with `shortest`
    the `max_songs` shortest songs."""
    if unit == "song":
        return data.songs(source, max_songs, shortest)
    if unit != "clip":
        raise EvaluationError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    count = len(source) if not max_songs else min(max_songs, len(source))
    out = []
    for i in range(count):
        record = source[i]
        song_id = record["song_id"]
        song_id = song_id.decode() if isinstance(song_id, bytes) else str(song_id)
        true_beats = np.asarray(record.get("true_beats", np.zeros((0, 2))), np.float64)
        out.append(
            data.Song(
                f"{song_id}#{int(record['clip_index'])}",
                int(record["start_sample"]),
                audio.from_pcm16(record["drums"]),
                audio.from_pcm16(record["drumless"]),
                true_beats.reshape(-1, 2),
            )
        )
    return out


def song_seed(seed: int, position: int) -> int:
    """The sampling seed of the song at `position` (32 bits from `seed` and the position)."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


@dataclasses.dataclass(frozen=True, eq=False)
class Tracked:
    """One stem and what the evaluation tracker sees in it: its outputs and the decoded beats."""

    audio: np.ndarray  # (L,) the stem
    embedding: np.ndarray  # (T, 50)
    probabilities: np.ndarray  # (T, 3)
    beats: np.ndarray  # (n, 2)

    def cut(self, num_frames: int) -> Tracked:
        """The first `num_frames` frames (and their samples) and the beats inside them."""
        beats = self.beats[self.beats[:, 0] < num_frames / dbn.FPS]
        samples = num_frames * audio.SAMPLE_RATE // dbn.FPS
        return Tracked(
            self.audio[:samples],
            self.embedding[:num_frames],
            self.probabilities[:num_frames],
            beats,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class Reference:
    """A song's references: the beats rhythm is scored against, and its real drums."""

    beats: np.ndarray  # (n, 2) true beats, or the drumless stem's tracked beats
    drums: Tracked

    def cut(self, num_frames: int) -> Reference:
        beats = self.beats[self.beats[:, 0] < num_frames / dbn.FPS]
        return Reference(beats, self.drums.cut(num_frames))


def take_metrics(take: Tracked, reference: Reference) -> dict[str, float]:
    """Every metric (`METRIC_NAMES`) of one drum stem against a song's references. Against
    another song's references (the floor), both sides are cut to the shorter."""
    frames = min(len(take.probabilities), len(reference.drums.probabilities))
    take, reference = take.cut(frames), reference.cut(frames)
    real = reference.drums
    return {
        **metrics.rhythm_metrics(reference.beats, take.beats),
        **metrics.drum_metrics(
            take.embedding, take.probabilities, real.embedding, real.probabilities, take.beats,
            real.beats,
        ),
        **sound.sound_metrics(take.audio, real.audio),
    }  # fmt: skip


def take_values(codes_KxS: np.ndarray, takes: list[Tracked], sampling_seconds: float) -> dict:
    """`TAKE_NAMES` of one song's K >= 2 takes: mean pairwise token disagreement and Fréchet
    distance between the takes' tracker embeddings, and sampling seconds per take."""
    pairs = list(itertools.combinations(range(len(takes)), 2))
    if not pairs:
        raise ValueError("take diversity needs at least two takes")
    codes = np.asarray(codes_KxS)
    return {
        "token_disagreement": float(np.mean([np.mean(codes[i] != codes[j]) for i, j in pairs])),
        "take_frechet": float(
            np.mean([frechet_distance(takes[i].embedding, takes[j].embedding) for i, j in pairs])
        ),
        "seconds_per_take": sampling_seconds / len(takes),
    }


def song_values(takes: list[Tracked], reference: Reference) -> dict:
    """A song's entry in a row: the mean over its takes of every metric, and the takes'."""
    values = [take_metrics(take, reference) for take in takes]
    means = {name: float(np.mean([v[name] for v in values])) for name in METRIC_NAMES}
    return {**means, "takes": values}


@dataclasses.dataclass
class Row:
    """One line of the tables: a run or a reference, with its per-song entries."""

    label: str
    kind: str  # "run", CEILING, ROUND_TRIP or FLOOR
    run_dir: str | None = None
    lm: str | None = None
    songs: list[dict] = dataclasses.field(default_factory=list)
    frames: list[np.ndarray] = dataclasses.field(default_factory=list, repr=False)  # per song
    frechet: dict | None = None  # `frechet_summary` against the real drums' frames

    def to_json(self) -> dict:
        names = [*METRIC_NAMES, *(n for n in TAKE_NAMES if self.songs and n in self.songs[0])]
        summary = {name: metrics.summarise(song[name] for song in self.songs) for name in names}
        return {
            "kind": self.kind,
            "run_dir": self.run_dir,
            "lm": self.lm,
            "num_songs": len(self.songs),
            "summary": summary,
            "frechet": self.frechet,
            "songs": self.songs,
        }


def _moments(frames_NxD: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    frames = np.asarray(frames_NxD, np.float64)
    return len(frames), frames.sum(axis=0), frames.T @ frames


def _frechet(moments: list) -> float:
    """Fréchet distance of two Gaussians given [(n, sum, sum of outer products)] for each."""
    (n_a, s_a, q_a), (n_b, s_b, q_b) = moments
    mu_a, mu_b = s_a / n_a, s_b / n_b
    cov_a = (q_a - n_a * np.outer(mu_a, mu_a)) / max(n_a - 1, 1)
    cov_b = (q_b - n_b * np.outer(mu_b, mu_b)) / max(n_b - 1, 1)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    value = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * np.real(root))
    return float(max(value, 0.0))


def frechet_distance(a_NxD: np.ndarray, b_MxD: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of feature vectors (rows):
    |mu_a - mu_b|² + Tr(C_a + C_b - 2 (C_a C_b)^½)."""
    return _frechet([_moments(a_NxD), _moments(b_MxD)])


def frechet_summary(frames: list[np.ndarray], real: list[np.ndarray]) -> dict[str, float]:
    """{"mean", "low", "high", "count"}: `frechet_distance` of a row's frames pooled over songs
    to the real drums' frames of the same songs, and its 95 % percentile bootstrap interval
    (songs resampled with replacement, the same songs on both sides; fixed seed)."""
    if len(frames) != len(real) or not frames:
        raise ValueError(f"need the same songs on both sides, got {len(frames)} and {len(real)}")
    per_song = [[_moments(x), _moments(y)] for x, y in zip(frames, real, strict=True)]

    def pooled(indices) -> float:
        return _frechet(
            [tuple(sum(per_song[i][side][k] for i in indices) for k in range(3)) for side in (0, 1)]
        )

    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(frames), size=(metrics.BOOTSTRAP_RESAMPLES, len(frames)))
    values = [pooled(indices) for indices in draws]
    tail = (1.0 - metrics.CONFIDENCE) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return {
        "mean": pooled(range(len(frames))),
        "low": float(low),
        "high": float(high),
        "count": len(frames),
    }


def evaluate_runs(
    run_specs: list[str],
    dataset: str,
    split: str,
    data_dir,
    *,
    unit: str = "song",
    max_songs: int = 0,
    shortest: bool = False,
    num_takes: int = 1,
    seed: int = 0,
    tracker: str = "madmom",
    output_dir=None,
    lm: str = DEFAULT_LM,
    vocoder: str = "auto",
    overrides: dict | None = None,
    sweep: tuple[str, list] | None = None,
    verbose: bool = True,
) -> dict:
    """Evaluates runs on the songs of a dataset split and writes evaluation.{json,csv}.

    Args:
      run_specs: `DIR` or `DIR:LMSUBDIR` values (see the module docstring); the rows' labels.
      dataset: a built dataset NAME[/CONFIG].
      split: its split (e.g. "test").
      data_dir: where it is built.
      unit: "song" (whole songs, reassembled from the clips) or "clip" (each clip record).
      max_songs: the first `max_songs` songs (by id) or clips; 0: all.
      shortest: with unit "song", the `max_songs` shortest songs instead (a quicker look).
      num_takes: drum takes per song and run, sampled as one batch.
      seed: PRNG seed of the sampling.
      tracker: the evaluation tracker (`jdrum.runs.tracker` name).
      output_dir: where the files go; None: the first run's directory.
      lm: the LM subdirectory of runs given as plain `DIR`.
      vocoder: how every run makes drum audio (`pipeline.Pipeline`: "auto", "hifigan", "vocos",
        "griffin-lim"); the round trips use Griffin-Lim and, unless it is "griffin-lim", the
        vocoder it picks.
      overrides: `SamplingConfig` fields overriding every run's `config.sampling`.
      sweep: (a `SamplingConfig` field, its values): every run gets one row per value (None:
        one row per run).
      verbose: show a progress bar over the songs and print the table.

    Returns:
      What evaluation.json holds: the settings ("dataset", "split", "data_dir", "unit",
      "num_songs", "num_takes", "seed", "tracker", "vocoder", "overrides", "sweep",
      "reference": "true beats" or "drumless beats"), "metrics" (the column names) and "rows"
      ({label: {"kind", "run_dir", "lm", "sampling" (runs: the settings used), "num_songs",
      "summary": {metric: {"mean", "low", "high", "std", "count"}}, "songs"}}, the runs first,
      then the ceiling, round trips and floors); plus "table" (the printed text) and "files"
      ({"json", "csv"} paths).

    Raises:
      EvaluationError: a missing or incomplete run, a missing dataset or split, no songs, bad
        counts, or bad sampling settings (e.g. guidance for an LM trained without dropped
        conditions).
    """
    if not run_specs:
        raise EvaluationError("no runs to evaluate")
    if max_songs < 0 or num_takes < 1:
        raise EvaluationError(f"need max_songs >= 0 and num_takes >= 1: {max_songs}, {num_takes}")
    specs = [parse_run(run, lm) for run in run_specs]
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"a run is named twice: {labels}")
    songs = load_songs(open_split(dataset, split, data_dir), unit, max_songs, shortest)
    if not songs:
        raise EvaluationError(f"{dataset} {split} has no songs")
    output_dir = os.fspath(output_dir if output_dir is not None else specs[0].run_dir)
    swept, settings = sweep or ("", [None])
    fields = [f.name for f in dataclasses.fields(sampling.SamplingConfig)]
    if sweep is not None and (swept not in fields or not settings):
        raise EvaluationError(f"sweep: need one of {', '.join(fields)} and values, got {sweep}")
    if len(set(settings)) != len(settings):
        raise EvaluationError(f"sweep: a value of {swept} is given twice: {settings}")
    try:
        pipes = [pipeline.Pipeline(spec.run_dir, spec.lm, vocoder=vocoder) for spec in specs]
        # The sampled rows: (label, spec, pipe, sampling settings), runs in order, then values.
        sampled = [
            (
                spec.label if sweep is None else f"{spec.label} {swept}={value:g}",
                spec,
                pipe,
                pipe.sampling_config(**(overrides or {}) | ({swept: value} if sweep else {})),
            )
            for spec, pipe in zip(specs, pipes, strict=True)
            for value in settings
        ]
    except (FileNotFoundError, TypeError, ValueError) as error:
        raise EvaluationError(str(error)) from None
    has_true_beats = all(len(song.true_beats) for song in songs)
    # The round trips of each run directory, through its first pipe: the real mel and the drum
    # VQ-VAE's reconstruction, each vocoded by Griffin-Lim and, if the pipe has one, by its
    # neural vocoder (every stage on its own and the whole chain).
    round_trips = {}  # label: (run_dir, pipe, through the VQ-VAE, vocoder)
    for spec, pipe in zip(specs, pipes, strict=True):
        for vqvae in (False, True):
            for vocoder in dict.fromkeys(("griffin-lim", pipe.vocoder)):
                mel = "drum VQ-VAE" if vqvae else "real mel"
                label = f"{spec.run_dir}: {mel} + {pipeline.VOCODER_NAMES[vocoder]}"
                round_trips.setdefault(label, (spec.run_dir, pipe, vqvae, vocoder))
    rows = {label: Row(label, "run", spec.run_dir, spec.lm) for label, spec, *_ in sampled}
    rows["real drums"] = Row("real drums", CEILING)
    for label, (run_dir, *_) in round_trips.items():
        rows[label] = Row(label, ROUND_TRIP, run_dir)
    floors = {label: Row(f"{label} vs another song", FLOOR, spec.run_dir, spec.lm)
              for label, spec, *_ in sampled}  # fmt: skip

    if num_takes > 1:  # compile each row's programs before `seconds_per_take` is measured
        noise = np.random.default_rng(0).normal(0.0, 0.1, audio.SAMPLE_RATE).astype(np.float32)
        for _, _, pipe, config in sampled:
            pipe.accompany(noise, num_takes=num_takes, config=config, max_retries=0)

    # Every take of every run, the real drums, the round trips (and the drumless stem when
    # there are no true beats) of a song in one batch of the tracker.
    batch = len(sampled) * num_takes + 1 + len(round_trips) + (0 if has_true_beats else 1)
    evaluator = dataclasses.replace(runs.tracker(tracker), batch_size=batch)
    generated, references = [], []  # per song: {label: [Tracked per take]}, Reference
    bar = tqdm.tqdm(songs, desc="evaluating", unit="song", disable=not verbose)
    for position, song in enumerate(bar):
        stems, codes, seconds = [], {}, {}
        for label, _, pipe, config in sampled:
            clock = {}

            def show(stage, done, total, label=label, clock=clock):
                clock.setdefault(stage, time.perf_counter())
                bar.set_postfix_str(f"{label}: {stage} {done}/{total}")

            result = pipe.accompany(
                song.drumless,
                num_takes=num_takes,
                seed=song_seed(seed, position),
                config=config,
                progress=show,
            )
            stems.extend(result.drums)
            codes[label] = result.codes
            seconds[label] = clock["vocoding"] - clock["sampling"]
        bar.set_postfix_str("round trip")
        stems.append(song.drums)
        stems.extend(
            pipe.round_trip(song.drums, vqvae, vocoder)
            for _, pipe, vqvae, vocoder in round_trips.values()
        )
        if not has_true_beats:
            stems.append(song.drumless)
        bar.set_postfix_str("tracking")
        embedding, probabilities = evaluator(np.stack(stems))
        tracked = [
            Tracked(x, e, p, dbn.decode(p))
            for x, e, p in zip(stems, embedding, probabilities, strict=True)
        ]
        real = tracked[len(sampled) * num_takes]
        reference = Reference(song.true_beats if has_true_beats else tracked[-1].beats, real)
        ids = {"position": position, "song_id": song.song_id, "seconds": song.seconds}
        takes = {
            label: tracked[r * num_takes : (r + 1) * num_takes]
            for r, (label, *_) in enumerate(sampled)
        }
        for label, run_takes in takes.items():
            values = song_values(run_takes, reference)
            if num_takes > 1:
                values.update(take_values(codes[label], run_takes, seconds[label]))
            rows[label].songs.append({**ids, **values})
            rows[label].frames.append(np.concatenate([take.embedding for take in run_takes]))
        rows["real drums"].songs.append({**ids, **song_values([real], reference)})
        rows["real drums"].frames.append(real.embedding)
        for i, label in enumerate(round_trips):
            round_trip = tracked[len(sampled) * num_takes + 1 + i]
            rows[label].songs.append({**ids, **song_values([round_trip], reference)})
            rows[label].frames.append(round_trip.embedding)
        generated.append(takes)
        references.append(reference)
    bar.close()
    for row in rows.values():
        row.frechet = frechet_summary(row.frames, rows["real drums"].frames)
    if len(songs) > 1:
        for position in range(len(songs)):
            other = (position - 1) % len(songs)
            for label, row in floors.items():
                values = song_values(generated[position][label], references[other])
                row.songs.append(
                    {"position": position, "song_id": songs[position].song_id,
                     "against": songs[other].song_id, **values}
                )  # fmt: skip
        rows.update({row.label: row for row in floors.values()})

    result = {
        "dataset": dataset,
        "split": split,
        "data_dir": os.fspath(data_dir),
        "unit": unit,
        "shortest": shortest,
        "num_songs": len(songs),
        "seconds": float(sum(song.seconds for song in songs)),
        "num_takes": num_takes,
        "seed": seed,
        "tracker": tracker,
        "vocoder": vocoder,
        "overrides": overrides or {},
        "sweep": None if sweep is None else [swept, list(settings)],
        "reference": "true beats" if has_true_beats else "drumless beats",
        "metrics": list(METRIC_NAMES),
        "rows": {label: row.to_json() for label, row in rows.items()},
    }
    for label, *_, config in sampled:
        result["rows"][label]["sampling"] = dataclasses.asdict(config)
    table = format_table(result)
    files = write_files(result, output_dir)
    if verbose:
        print(table)
        print(f"Wrote {files['json']} and {files['csv']}")
    return {**result, "table": table, "files": files}


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['mean']:.3f} [{stats['low']:.2f}, {stats['high']:.2f}]"


def _block(result: dict, title: str, names) -> list[str]:
    header = ["", *(TITLES[name] for name in names)]
    body = [
        [label, *(_cell(row["summary"].get(name)) for name in names)]
        for label, row in result["rows"].items()
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])

    return [title, line(header), line(["-" * w for w in widths]), *map(line, body)]


def format_table(result: dict) -> str:
    """The rows as text tables (rhythm; Table 1; sound; with several takes, the takes of one
    song; the Fréchet distance), each cell the mean over songs (the Fréchet distance: over the
    pooled songs) and its 95 % bootstrap interval."""
    unit = "songs" if result["unit"] == "song" else "clips"
    lines = [
        f"{result['dataset']} {result['split']}: {result['num_songs']} {unit} "
        f"({result['seconds'] / 60:.1f} min), {result['num_takes']} take(s) each, tracker "
        f"{result['tracker']}, beats by madmom's DBN; mean [95 % bootstrap interval over {unit}]",
        "",
        *_block(result, f"Rhythm against the {result['reference']}", metrics.RHYTHM_NAMES),
        "",
        *_block(result, "Table 1: against the real drums", metrics.DRUM_NAMES),
        "",
        *_block(result, "Sound against the real drums (jdrum.sound)", sound.SOUND_NAMES),
        "",
        *(
            [*_block(result, "Takes of one song: how different, and their cost", TAKE_NAMES), ""]
            if result["num_takes"] > 1
            else []
        ),
        "Fréchet distance to the real drums: the tracker's frame embeddings, pooled over songs",
        *[
            f"  {label}: {_cell(row['frechet'])}"
            for label, row in result["rows"].items()
            if row.get("frechet") is not None
        ],
    ]
    return "\n".join(lines)


def write_files(result: dict, output_dir) -> dict[str, str]:
    """Writes evaluation.json (everything) and evaluation.csv (one line per row) to
    `output_dir`; returns {"json", "csv"} paths."""
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, JSON_NAME)
    with open(json_path, "w") as f:
        json.dump(result, f, indent=1, default=_json_default)
    csv_path = os.path.join(output_dir, CSV_NAME)
    names = list(result["metrics"]) + (list(TAKE_NAMES) if result["num_takes"] > 1 else [])
    stats = ("mean", "low", "high", "std")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["row", "kind", "run_dir", "lm", "songs", "takes"]
            + [f"{name}_{stat}" for name in names for stat in stats]
            + [f"frechet_{stat}" for stat in stats[:3]]
        )
        for label, row in result["rows"].items():
            summary = row["summary"]
            values = [summary[n][stat] if n in summary else "" for n in names for stat in stats]
            frechet = row.get("frechet") or {}
            writer.writerow(
                [label, row["kind"], row["run_dir"] or "", row["lm"] or "", row["num_songs"]]
                + [result["num_takes"] if row["kind"] in ("run", FLOOR) else 1]
                + values
                + [frechet.get(stat, "") for stat in stats[:3]]
            )
    return {"json": json_path, "csv": csv_path}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
