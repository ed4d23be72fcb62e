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

Fréchet distances between Gaussians fitted to the evaluation tracker's frame embeddings (50
dimensions, 100 frames/s; `frechet_distance`), two of them:

* `song_frechet`, per song: all of a song's takes' frames against that song's real drums' frames
  (0 for the real drums themselves; the floor: against the other song's real drums), averaged
  over songs with the usual interval. It says how close the takes sit to *their* song's drums
  as a distribution, so a row whose takes all play one groove of the song scores well;
* `frechet`, a measure of a whole row, not of a song: every take of the row, pooled over songs,
  against the same songs' real drums pooled (0 for the real drums), with a 95 % bootstrap
  interval over songs (`frechet_summary`). It says how far the generated drums sit from real
  ones as a population; takes pulled towards one groove per song shrink the pooled spread and
  can move it away even when every song gets closer (see priming). It has no floor row
  (another song's real drums are the same pool).

Priming ("continue my groove", `prime_bars` N > 0): every sampled row gets a twin row "<label>
primed N bars", sampled with the same songs, seeds and settings and `Pipeline.accompany(...,
prime=..., prime_at=0)`, the prime being the song's real drums up to its (N + 1)-th true
downbeat (`song_prime`; the dataset needs true beats with downbeats). Then every row of the
evaluation (runs, twins, ceiling, round trips, floors) is scored only from the first tracker
frame after the prime's last token (the same frame for every row of a song, `scored_from` in
each song's entry, in s): the tracker and the DBN still see the whole song, and `Tracked.after`
/ `Reference.after` drop the frames, samples and beats before that frame and shift the beat
times of both sides by it; the takes' token disagreement counts the tokens after the prime.
A "Priming" block compares each run with its twin on TrackEmb-MSE, song Fréchet and B-F1: the
means, the per-song difference primed − unprimed with a 95 % paired bootstrap interval, and the
songs where the twin is better (`priming_comparison`).

Tables give the mean over songs with a 95 % bootstrap interval (`metrics.summarise`).
evaluation.json holds the settings, every row's summary and its per-song values (and the
priming comparison); evaluation.csv one line per row with the mean, the interval and the std of
every metric.
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
from jdrum.beat import conditions, dbn, metrics
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
    "song_frechet": "Fréchet to its song ↓",
    "frechet": "Fréchet, pooled ↓",
}
TAKE_NAMES = ("token_disagreement", "take_frechet", "seconds_per_take")
METRIC_NAMES = metrics.METRIC_NAMES + sound.SOUND_NAMES
SONG_NAMES = ("song_frechet",)  # per song, of all its takes together (`song_values`)
# The priming comparison (`priming_comparison`): name, whether lower is better.
PRIMING_NAMES = {"trackemb_mse": True, "song_frechet": True, "beat_f1": False}
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

    def after(self, first_frame: int) -> Tracked:
        """From frame `first_frame` onward (and its samples), as if the stem started there:
        the beats at or after it, their times shifted by it (`beats_after`)."""
        samples = first_frame * audio.SAMPLE_RATE // dbn.FPS
        return Tracked(
            self.audio[samples:],
            self.embedding[first_frame:],
            self.probabilities[first_frame:],
            beats_after(self.beats, first_frame),
        )


def beats_after(beats_Nx2: np.ndarray, first_frame: int) -> np.ndarray:
    """(m, 2) the beats at or after frame `first_frame` (100 frames/s), times shifted back by
    `first_frame` / 100 s (positions in the bar kept)."""
    beats = np.asarray(beats_Nx2, np.float64).reshape(-1, 2)
    start = first_frame / dbn.FPS
    return (beats[beats[:, 0] >= start] - [start, 0.0]).reshape(-1, 2)


@dataclasses.dataclass(frozen=True, eq=False)
class Reference:
    """A song's references: the beats rhythm is scored against, and its real drums."""

    beats: np.ndarray  # (n, 2) true beats, or the drumless stem's tracked beats
    drums: Tracked

    def cut(self, num_frames: int) -> Reference:
        beats = self.beats[self.beats[:, 0] < num_frames / dbn.FPS]
        return Reference(beats, self.drums.cut(num_frames))

    def after(self, first_frame: int) -> Reference:
        """From frame `first_frame` onward, both the beats and the drums (`Tracked.after`)."""
        return Reference(beats_after(self.beats, first_frame), self.drums.after(first_frame))


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
    """A song's entry in a row: the mean over its takes of every metric, `song_frechet` (all
    the takes' tracker frames against the reference's real drums', not cut to the shorter),
    and the takes' metrics."""
    values = [take_metrics(take, reference) for take in takes]
    means = {name: float(np.mean([v[name] for v in values])) for name in METRIC_NAMES}
    frames = np.concatenate([take.embedding for take in takes])
    song_frechet = frechet_distance(frames, reference.drums.embedding)
    return {**means, "song_frechet": song_frechet, "takes": values}


def song_prime(song: data.Song, bars: int) -> tuple[np.ndarray, int, int]:
    """(prime, end token, first scored frame): the song's real drums up to its (`bars` + 1)-th
    true downbeat (the first `bars` bars and any pickup before them), the end of the tokens it
    fixes from 0 s (`pipeline.prime_tokens`), and the first tracker frame (100 frames/s) after
    them, where the song is scored from.

    Raises:
      EvaluationError: (naming the song) fewer than `bars` + 1 true downbeats, a silent prime,
        or nothing left to sample after it.
    """
    downbeats = song.true_beats[np.rint(song.true_beats[:, 1]) == 1, 0]
    if len(downbeats) <= bars:
        raise EvaluationError(
            f"{song.song_id} has {len(downbeats)} true downbeats, prime_bars {bars} needs "
            f"{bars + 1}"
        )
    prime = song.drums[: int(round(downbeats[bars] * audio.SAMPLE_RATE))]
    try:
        _, end = pipeline.prime_tokens(len(song.drums), len(prime), 0.0)
    except ValueError as error:
        raise EvaluationError(f"{song.song_id}: {error}") from None
    if not np.any(prime):
        raise EvaluationError(f"{song.song_id}: its first {bars} bars of drums are silent")
    if end >= conditions.num_tokens(len(song.drums)):
        raise EvaluationError(f"{song.song_id}: nothing is left after its first {bars} bars")
    first_frame = -(-end * conditions.TOKEN_HOP * dbn.FPS // audio.SAMPLE_RATE)  # ceil
    return prime, end, first_frame


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
    prime_bars: int = 0  # the bars of real drums its takes were primed with (0: none)

    def to_json(self) -> dict:
        extra = (*SONG_NAMES, *TAKE_NAMES)
        names = [*METRIC_NAMES, *(n for n in extra if self.songs and n in self.songs[0])]
        summary = {name: metrics.summarise(song[name] for song in self.songs) for name in names}
        return {
            "kind": self.kind,
            "run_dir": self.run_dir,
            "lm": self.lm,
            "prime_bars": self.prime_bars,
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


def priming_comparison(unprimed: list[dict], primed: list[dict]) -> dict:
    """{name: {"unprimed", "primed", "difference": `metrics.summarise` dicts, "better",
    "count"}} for every name of `PRIMING_NAMES`, from a run's and its primed twin's song
    entries (the same songs in order): the difference is primed − unprimed per song, its
    interval a paired bootstrap over songs; "better" counts the songs where the twin is better
    (lower, or higher for B-F1)."""
    if [s["song_id"] for s in unprimed] != [s["song_id"] for s in primed] or not primed:
        raise ValueError("a run and its primed twin need the same songs")
    out = {}
    for name, lower in PRIMING_NAMES.items():
        before = np.array([song[name] for song in unprimed], np.float64)
        after = np.array([song[name] for song in primed], np.float64)
        change = after - before
        out[name] = {
            "unprimed": metrics.summarise(before),
            "primed": metrics.summarise(after),
            "difference": metrics.summarise(change),
            "better": int(np.sum(change < 0 if lower else change > 0)),
            "count": len(change),
        }
    return out


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
    prime_bars: int = 0,
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
      prime_bars: N > 0: every sampled row gets a twin "<label> primed N bars" primed with the
        song's first N bars of real drums (`song_prime`), and every row is scored only after
        them (module docstring); needs true beats with downbeats.
      verbose: show a progress bar over the songs and print the table.

    Returns:
      What evaluation.json holds: the settings ("dataset", "split", "data_dir", "unit",
      "num_songs", "seconds", "scored_seconds" (after the primes), "num_takes", "seed",
      "tracker", "vocoder", "overrides", "sweep", "prime_bars", "reference": "true beats" or
      "drumless beats"), "metrics" (the column names of the per-take metrics) and "rows"
      ({label: {"kind", "run_dir", "lm", "prime_bars", "sampling" (runs: the settings used),
      "num_songs", "summary": {metric: {"mean", "low", "high", "std", "count"}}, "frechet",
      "songs"}}, the runs (each followed by its primed twin) first, then the ceiling, round
      trips and floors; a song's entry has "scored_from" (s), and a twin's its "primed_tokens"),
      "priming" ({run label: {"primed": twin label, **`priming_comparison`}}; {} without
      priming); plus "table" (the printed text) and "files" ({"json", "csv"} paths).

    Raises:
      EvaluationError: a missing or incomplete run, a missing dataset or split, no songs, bad
        counts, bad sampling settings (e.g. guidance for an LM trained without dropped
        conditions), or priming without true downbeats or with a song too short for it.
    """
    if not run_specs:
        raise EvaluationError("no runs to evaluate")
    if max_songs < 0 or num_takes < 1 or prime_bars < 0:
        raise EvaluationError(
            f"need max_songs >= 0, num_takes >= 1 and prime_bars >= 0: {max_songs}, {num_takes}, "
            f"{prime_bars}"
        )
    specs = [parse_run(run, lm) for run in run_specs]
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"a run is named twice: {labels}")
    songs = load_songs(open_split(dataset, split, data_dir), unit, max_songs, shortest)
    if not songs:
        raise EvaluationError(f"{dataset} {split} has no songs")
    has_true_beats = all(len(song.true_beats) for song in songs)
    # Per song: the prime (None without priming), its end token and the first frame every row
    # is scored from.
    primes, end_tokens, first_frames = [None] * len(songs), [0] * len(songs), [0] * len(songs)
    if prime_bars:
        if not has_true_beats or not any(np.any(s.true_beats[:, 1] == 1) for s in songs):
            raise EvaluationError(
                f"prime_bars needs the true beats and downbeats of every song; {dataset} {split}"
                " has songs without them"
            )
        primes, end_tokens, first_frames = zip(
            *(song_prime(s, prime_bars) for s in songs), strict=True
        )
    primed_name = f"primed {_bars(prime_bars)}"
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
    # With priming each row is followed by its twin: (label, spec, pipe, settings, primed).
    sampled = [
        (f"{label} {primed_name}" if primed else label, spec, pipe, config, primed)
        for label, spec, pipe, config in sampled
        for primed in ((False, True) if prime_bars else (False,))
    ]
    # The round trips of each run directory, through its first pipe: the real mel and the drum
    # VQ-VAE's reconstruction, each vocoded by Griffin-Lim and, if the pipe has one, by its
    # neural vocoder (every stage on its own and the whole chain).
    round_trips = {}  # label: (run_dir, pipe, through the VQ-VAE, vocoder)
    for spec, pipe in zip(specs, pipes, strict=True):
        for vqvae in (False, True):
            for stage in dict.fromkeys(("griffin-lim", pipe.vocoder)):  # not `vocoder`
                mel = "drum VQ-VAE" if vqvae else "real mel"
                label = f"{spec.run_dir}: {mel} + {pipeline.VOCODER_NAMES[stage]}"
                round_trips.setdefault(label, (spec.run_dir, pipe, vqvae, stage))
    rows = {
        label: Row(label, "run", spec.run_dir, spec.lm, prime_bars=prime_bars if primed else 0)
        for label, spec, _, _, primed in sampled
    }
    rows["real drums"] = Row("real drums", CEILING)
    for label, (run_dir, *_) in round_trips.items():
        rows[label] = Row(label, ROUND_TRIP, run_dir)
    floors = {label: Row(f"{label} vs another song", FLOOR, spec.run_dir, spec.lm,
                         prime_bars=prime_bars if primed else 0)
              for label, spec, _, _, primed in sampled}  # fmt: skip

    if num_takes > 1:  # compile each row's programs before `seconds_per_take` is measured
        noise = np.random.default_rng(0).normal(0.0, 0.1, audio.SAMPLE_RATE).astype(np.float32)
        for _, _, pipe, config, primed in sampled:
            prime = noise[: len(noise) // 2] if primed else None
            pipe.accompany(noise, num_takes=num_takes, config=config, max_retries=0, prime=prime)

    # Every take of every run, the real drums, the round trips (and the drumless stem when
    # there are no true beats) of a song in one batch of the tracker.
    batch = len(sampled) * num_takes + 1 + len(round_trips) + (0 if has_true_beats else 1)
    evaluator = dataclasses.replace(runs.tracker(tracker), batch_size=batch)
    generated, references = [], []  # per song: {label: [Tracked per take]}, Reference
    bar = tqdm.tqdm(songs, desc="evaluating", unit="song", disable=not verbose)
    for position, song in enumerate(bar):
        stems, codes, seconds, primed_tokens = [], {}, {}, {}
        first = first_frames[position]
        for label, _, pipe, config, primed in sampled:
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
                prime=primes[position] if primed else None,
                prime_at=0.0,
            )
            stems.extend(result.drums)
            codes[label] = result.codes[:, end_tokens[position] :]  # the tokens after the prime
            if primed:
                primed_tokens[label] = list(result.primed)
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
        # Beats decoded over the whole song; every stem scored from the song's first frame.
        tracked = [
            Tracked(x, e, p, dbn.decode(p)).after(first)
            for x, e, p in zip(stems, embedding, probabilities, strict=True)
        ]
        real = tracked[len(sampled) * num_takes]
        beats = beats_after(song.true_beats, first) if has_true_beats else tracked[-1].beats
        reference = Reference(beats, real)
        ids = {
            "position": position,
            "song_id": song.song_id,
            "seconds": song.seconds,
            "scored_from": first / dbn.FPS,
        }
        takes = {
            label: tracked[r * num_takes : (r + 1) * num_takes]
            for r, (label, *_) in enumerate(sampled)
        }
        for label, run_takes in takes.items():
            values = song_values(run_takes, reference)
            if num_takes > 1:
                values.update(take_values(codes[label], run_takes, seconds[label]))
            if label in primed_tokens:
                values["primed_tokens"] = primed_tokens[label]
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
                     "against": songs[other].song_id,
                     "scored_from": first_frames[position] / dbn.FPS, **values}
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
        "scored_seconds": float(
            sum(s.seconds - f / dbn.FPS for s, f in zip(songs, first_frames, strict=True))
        ),
        "num_takes": num_takes,
        "seed": seed,
        "tracker": tracker,
        "vocoder": vocoder,
        "overrides": overrides or {},
        "sweep": None if sweep is None else [swept, list(settings)],
        "prime_bars": prime_bars,
        "reference": "true beats" if has_true_beats else "drumless beats",
        "metrics": list(METRIC_NAMES),
        "rows": {label: row.to_json() for label, row in rows.items()},
    }
    for label, _, _, config, _ in sampled:
        result["rows"][label]["sampling"] = dataclasses.asdict(config)
    twins = zip(sampled[::2], sampled[1::2], strict=True) if prime_bars else []  # (run, twin)
    result["priming"] = {
        run: {"primed": twin, **priming_comparison(rows[run].songs, rows[twin].songs)}
        for (run, *_), (twin, *_) in twins
    }
    table = format_table(result)
    files = write_files(result, output_dir)
    if verbose:
        print(table)
        print(f"Wrote {files['json']} and {files['csv']}")
    return {**result, "table": table, "files": files}


def _bars(count: int) -> str:
    return f"{count} bar{'' if count == 1 else 's'}"


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['mean']:.3f} [{stats['low']:.2f}, {stats['high']:.2f}]"


def _stats(row: dict, name: str) -> dict | None:
    """A row's summary of a metric; "frechet": its pooled Fréchet distance."""
    return row.get("frechet") if name == "frechet" else row["summary"].get(name)


def _block(result: dict, title: str, names) -> list[str]:
    header = ["", *(TITLES[name] for name in names)]
    body = [
        [label, *(_cell(_stats(row, name)) for name in names)]
        for label, row in result["rows"].items()
    ]
    return [title, *_aligned([header, *body])]


def _aligned(lines: list[list[str]]) -> list[str]:
    """Text columns: the first left-aligned, the others right-aligned; a rule after the first
    line."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])

    return [line(lines[0]), line(["-" * w for w in widths]), *map(line, lines[1:])]


def _priming_block(result: dict) -> list[str]:
    bars = _bars(result["prime_bars"])
    lines = [["", "", "unprimed", "primed", "primed − unprimed", "better"]]
    for label, comparison in result["priming"].items():
        for name in PRIMING_NAMES:
            stats = comparison[name]
            change = stats["difference"]
            lines.append([
                label, TITLES[name], _cell(stats["unprimed"]), _cell(stats["primed"]),
                f"{change['mean']:+.4f} [{change['low']:+.4f}, {change['high']:+.4f}]",
                f"{stats['better']}/{stats['count']}",
            ])  # fmt: skip
    return [
        f"Priming: each run against its twin primed with the first {bars} of the real drums, "
        "per song; the difference with a paired bootstrap interval, the songs where it is better",
        *_aligned(lines),
    ]


def format_table(result: dict) -> str:
    """The rows as text tables (rhythm; Table 1; sound; with several takes, the takes of one
    song; the Fréchet distances; with priming, each run against its primed twin), each cell
    the mean over songs (the pooled Fréchet distance: over the pooled songs) and its 95 %
    bootstrap interval."""
    unit = "songs" if result["unit"] == "song" else "clips"
    bars = result.get("prime_bars", 0)
    scored = (
        f"; scored after the first {_bars(bars)} of each song (the prime): "
        f"{result['scored_seconds'] / 60:.1f} min"
        if bars
        else ""
    )
    lines = [
        f"{result['dataset']} {result['split']}: {result['num_songs']} {unit} "
        f"({result['seconds'] / 60:.1f} min), {result['num_takes']} take(s) each, tracker "
        f"{result['tracker']}, beats by madmom's DBN; mean [95 % bootstrap interval over {unit}]"
        f"{scored}",
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
        *_block(
            result,
            "Fréchet distance to the real drums (tracker frame embeddings): per song, its takes "
            "against its real drums; pooled over songs",
            ("song_frechet", "frechet"),
        ),
        *(["", *_priming_block(result)] if result.get("priming") else []),
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
    names += SONG_NAMES  # beside the pooled Fréchet distance
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
