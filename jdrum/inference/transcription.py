"""Drum transcription: drum audio → notes [onset s, General MIDI key, MIDI velocity], and scores.

    transcriber = transcription.load("runs/demo")          # or "runs/demo/transcriber"
    notes_Nx3 = transcriber.notes(drums_L)                  # mono float, 44.1 kHz by default
    result = transcription.evaluate(transcriber, data.songs(source))
    print(transcription.format_table(result))

A transcriber run is trained by `python -m jdrum.train --config configs/transcriber.py
--workdir runs/NAME/transcriber` (`jdrum.trainers.transcriber`). Its classes, the keys folded
into each and the key each is written as are `CLASSES`, `class_of_key` and `CLASS_KEYS`
(`jdrum.models.transcriber`). Songs of any length are transcribed in chunks with context on
either side (`jdrum.models.transcriber.activations`), one compiled shape for all.

`evaluate` scores songs against their drum notes (`Song.drum_notes`): per class, onset
precision, recall and F1 with mir_eval's matching at 50 ms, pooled over songs, the mean
absolute MIDI velocity difference of the matched notes, and per song the F1 (over all classes
and per class) with the mean's 95 % bootstrap interval over songs. `evaluate_dataset` does it
for a built dataset's whole songs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import numpy as np

from jdrum import audio, data, runs
from jdrum.beat import metrics
from jdrum.models import transcriber as model_lib
from jdrum.models.transcriber import CLASS_KEYS, CLASSES, class_of_key

__all__ = [
    "CLASSES",
    "CLASS_KEYS",
    "Transcriber",
    "class_of_key",
    "evaluate",
    "evaluate_dataset",
    "format_table",
    "load",
]

TRAIN_COMMAND = "python -m jdrum.train --config configs/transcriber.py --workdir {workdir}"
# Peak picking and chunking when a run's config has no `inference` block.
DEFAULT_INFERENCE = {
    "threshold": 0.5,  # onset probability; one value or one per class
    "min_distance": 2,  # frames between two notes of a class (+1): 35 ms at hop 512
    "chunk_frames": 1024,  # frames per chunk (11.9 s at hop 512)
    "context_frames": 128,  # frames of context on either side of a chunk (1.5 s)
    "batch_size": 4,  # chunks per call
}


class Transcriber:
    """A trained transcriber (`load`): `notes(audio)` and the activations behind them."""

    def __init__(self, model, params, config, workdir: str | None = None):
        self.workdir = workdir
        self.config = config
        self.model_config = runs.transcriber_config(config)
        self.params = jax.device_put(params)
        settings = dict(DEFAULT_INFERENCE)
        settings.update(dict(config.get("inference", {})))
        self.threshold = np.broadcast_to(
            np.asarray(settings["threshold"], np.float64), (len(CLASSES),)
        ).copy()
        self.min_distance = int(settings["min_distance"])
        self.chunk_frames = int(settings["chunk_frames"])
        self.context_frames = int(settings["context_frames"])
        self.batch_size = int(settings["batch_size"])
        self._predict = model_lib.predictor(model, self.model_config)

    @property
    def hop_length(self) -> int:
        return self.model_config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.model_config.frame_rate

    def activations(
        self, audio_L: np.ndarray, sample_rate: int = audio.SAMPLE_RATE
    ) -> tuple[np.ndarray, np.ndarray]:
        """(T, C) onset probabilities and (T, C) velocities / 127 at `frame_rate`.

        Raises:
          ValueError: input that is not mono (1-D), or has NaN or infinite samples.
        """
        x_L = np.asarray(audio_L)
        if x_L.ndim != 1:
            raise ValueError(f"the transcriber takes mono audio of shape (L,), got {x_L.shape}")
        if not np.all(np.isfinite(x_L)):
            raise ValueError("the audio has NaN or infinite samples")
        x_L = x_L.astype(np.float32)
        if sample_rate != audio.SAMPLE_RATE and len(x_L):
            x_L = audio.resample(x_L, sample_rate, audio.SAMPLE_RATE)
        if len(x_L) < self.hop_length:
            empty = np.zeros((0, len(CLASSES)), np.float32)
            return empty, empty
        return model_lib.activations(
            lambda batch: self._predict(self.params, batch),
            x_L,
            self.hop_length,
            self.chunk_frames,
            self.context_frames,
            self.batch_size,
        )

    def notes(self, audio_L: np.ndarray, sample_rate: int = audio.SAMPLE_RATE) -> np.ndarray:
        """The drum notes of mono float audio, any length.

        Args:
          audio_L: (L,) float audio (drums; a mix works less well).
          sample_rate: its rate; other rates than 44.1 kHz are resampled.

        Returns:
          (N, 3) float64 [onset s, General MIDI key (`CLASS_KEYS`, one per class), MIDI
          velocity 1-127], sorted by time; (0, 3) for audio shorter than a frame.

        Raises:
          ValueError: input that is not mono (1-D), or has NaN or infinite samples.
        """
        onset_TxC, velocity_TxC = self.activations(audio_L, sample_rate)
        return model_lib.pick_peaks(
            onset_TxC,
            velocity_TxC,
            self.threshold,
            self.min_distance,
            self.hop_length,
        )


def _is_trained(workdir: str) -> bool:
    return os.path.exists(os.path.join(workdir, "config.json")) and (
        runs.latest_step(workdir) is not None
    )


def load(path: str | os.PathLike) -> Transcriber:
    """The transcriber of a run: `path` is a transcriber workdir or a run directory holding
    `transcriber/`.

    Raises:
      FileNotFoundError: (one line) neither holds a trained transcriber; names the command
        that trains one.
      ValueError: `path` is a run of another stage.
    """
    path = os.fspath(path)
    for workdir in (path, os.path.join(path, runs.TRANSCRIBER_DIR)):
        if _is_trained(workdir):
            config = runs.read_config(workdir)
            if config.get("stage") != "transcriber":
                raise ValueError(f"{workdir} is a {config.get('stage')!r} run, not a transcriber")
            model, params, config = runs.load_transcriber(workdir)
            return Transcriber(model, params, config, workdir)
    is_stage_dir = os.path.basename(os.path.normpath(path)) == runs.TRANSCRIBER_DIR
    target = path if is_stage_dir else os.path.join(path, runs.TRANSCRIBER_DIR)
    raise FileNotFoundError(
        f"no trained transcriber in {path}; train one with: " + TRAIN_COMMAND.format(workdir=target)
    )


def _song_id(song, index: int) -> str:
    song_id = getattr(song, "song_id", None)
    if song_id is None and hasattr(song, "plan"):
        song_id = song.plan.song_id
    return str(song_id if song_id is not None else index)


def _interval(values) -> dict | None:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return metrics.summarise(values) if values.size else None


def _finite(value) -> float | None:
    return None if not np.isfinite(value) else float(value)


def evaluate(transcriber: Transcriber, songs: Sequence, window: float = 0.05) -> dict:
    """Scores a transcriber's notes of each song's drum stem against the song's drum notes.

    Args:
      transcriber: from `load`.
      songs: with `drums` (float audio, 44.1 kHz) and `drum_notes` ((N, 3)): `jdrum.data.Song`
        (whole songs of a dataset: `data.songs`) or `jdrum.datasets.synth.Song`.
      window: onset tolerance in s.

    Returns:
      {"songs", "seconds", "window",
       "classes": {name: {"f1", "precision", "recall", "velocity_error", "reference",
                          "estimated", "matched", "song_f1"}},
       "all": the same over every class,
       "per_song": [{"song_id", "f1", "class_f1": {name: F1 or None}}]}.
      Counts and scores are pooled over songs; "velocity_error" is the mean absolute MIDI
      velocity difference over matched notes (None without any); "song_f1" is the mean of the
      per-song F1 with its 95 % bootstrap interval over the songs that have notes of the class
      (`jdrum.beat.metrics.summarise`: {"mean", "low", "high", "std", "count"}; None if none).
    """
    references, estimates, seconds = [], [], 0.0
    for song in songs:
        estimates.append(transcriber.notes(np.asarray(song.drums, np.float32)))
        references.append(np.asarray(song.drum_notes, np.float64).reshape(-1, 3))
        seconds += len(song.drums) / audio.SAMPLE_RATE
    scores = model_lib.score(references, estimates, window)
    classes = {}
    for c, name in enumerate(CLASSES):
        row = dict(scores["classes"][name])
        row["velocity_error"] = _finite(row["velocity_error"])
        row["song_f1"] = _interval(scores["song_class_f1"][:, c])
        classes[name] = row
    overall = dict(scores["all"])
    overall["velocity_error"] = _finite(overall["velocity_error"])
    overall["song_f1"] = _interval(scores["song_f1"])
    per_song = [
        {
            "song_id": _song_id(song, i),
            "f1": _finite(scores["song_f1"][i]),
            "class_f1": {n: _finite(scores["song_class_f1"][i, c]) for c, n in enumerate(CLASSES)},
        }
        for i, song in enumerate(songs)
    ]
    return {
        "songs": len(per_song),
        "seconds": seconds,
        "window": window,
        "classes": classes,
        "all": overall,
        "per_song": per_song,
    }


def evaluate_dataset(
    transcriber: Transcriber | str | os.PathLike,
    dataset: str,
    data_dir: str | os.PathLike = "data/tfds",
    split: str = "test",
    max_songs: int = 0,
) -> dict:
    """`evaluate` on the whole songs of a built dataset's split (`data.songs`), e.g.
    `evaluate_dataset("runs/demo", "synthstems/eval_unseen_kits")`; adds "dataset", "split"."""
    if not isinstance(transcriber, Transcriber):
        transcriber = load(transcriber)
    songs = data.songs(data.data_source(dataset, split, data_dir), max_songs)
    return {"dataset": dataset, "split": split, **evaluate(transcriber, songs)}


def format_table(result: dict) -> str:
    """A plain-text table of `evaluate`'s result: one row per class and one for all."""
    header = ["class", "notes", "P", "R", "F1", "F1 per song [95 %]", "vel. err"]
    lines = [header]
    rows = [(name, result["classes"][name]) for name in CLASSES] + [("all", result["all"])]
    for name, row in rows:
        song_f1 = row["song_f1"]
        interval = (
            "-"
            if song_f1 is None
            else f"{song_f1['mean']:.3f} [{song_f1['low']:.2f}, {song_f1['high']:.2f}]"
        )
        error = "-" if row["velocity_error"] is None else f"{row['velocity_error']:.1f}"
        lines.append(
            [
                name,
                str(row["reference"]),
                f"{row['precision']:.3f}",
                f"{row['recall']:.3f}",
                f"{row['f1']:.3f}",
                interval,
                error,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    title = f"{result.get('dataset', 'songs')} {result.get('split', '')}".strip()
    minutes = result["seconds"] / 60
    caption = (
        f"{title}: {result['songs']} songs ({minutes:.1f} min), onsets within "
        f"{1000 * result['window']:.0f} ms, pooled over songs; velocity error in MIDI steps"
    )
    return "\n".join([caption, *text])
