"""Reading clip records: TFDS builders in `tfds_builders/`, `tfds.data_source`, grain pipelines."""

from __future__ import annotations

import collections
import dataclasses
import importlib
import importlib.util
import os
import types

import grain
import numpy as np

from jdrum import audio

BUILDERS_PACKAGE = "tfds_builders"
BATCHED_FIELDS = (
    "drums",
    "drumless",
    "beat_embedding",
    "beat_activation",
    "clip_index",
    "start_sample",
    "tempo",
)


def builder_names() -> list[str]:
    """Datasets with a builder in `tfds_builders/` (one folder each, `tfds new` layout)."""
    root = os.path.dirname(importlib.import_module(BUILDERS_PACKAGE).__file__)
    return sorted(
        name
        for name in os.listdir(root)
        if os.path.isfile(os.path.join(root, name, f"{name}_dataset_builder.py"))
    )


def register(name: str) -> None:
    """Imports the builder of dataset `name` so that TFDS knows it."""
    if name not in builder_names():
        raise ValueError(f"unknown dataset {name!r}; builders: {', '.join(builder_names())}")
    importlib.import_module(f"{BUILDERS_PACKAGE}.{name}.{name}_dataset_builder")


def _local_gfile() -> types.SimpleNamespace:
    """The three `tf.io.gfile` calls of TFDS's shuffler, on local files."""
    gfile = types.SimpleNamespace(GFile=open, exists=os.path.exists, remove=os.remove)
    return types.SimpleNamespace(io=types.SimpleNamespace(gfile=gfile))


def _shuffle_without_tensorflow() -> None:
    """Lets TFDS shuffle splits larger than its 1 GB memory buffer without TensorFlow.

    Past that size TFDS's shuffler spills examples into temporary bucket files through
    `tf.io.gfile`, and TensorFlow is not a jdrum dependency (building synthstems/default or a
    real dataset would fail with "No module named 'tensorflow'"). Where TensorFlow is missing,
    the shuffler gets plain local-file calls instead; bucket files live under the data_dir.
    """
    from tensorflow_datasets.core import shuffle

    if importlib.util.find_spec("tensorflow") is None:
        shuffle.tf = _local_gfile()


def builder(name_config: str, data_dir: str | os.PathLike, num_workers: int = 1):
    """The array_record TFDS builder for "NAME" or "NAME/CONFIG" (NAME: its default config),
    building with `num_workers` processes (`records.ParallelBuild`; the data is the same)."""
    import tensorflow_datasets as tfds

    _shuffle_without_tensorflow()

    name, _, config_name = name_config.partition("/")
    register(name)
    cls = tfds.builder_cls(name)
    configs = [c.name for c in cls.BUILDER_CONFIGS]
    if config_name and config_name not in configs:
        raise ValueError(f"{name} has no config {config_name!r}; configs: {', '.join(configs)}")
    return cls(
        config=config_name or None,
        data_dir=os.fspath(data_dir),
        file_format="array_record",
        num_workers=num_workers,
    )


def data_source(name_config: str, split: str, data_dir: str | os.PathLike):
    """Random-access source of one split of a built dataset (`tfds.data_source`)."""
    import tensorflow_datasets as tfds

    register(name_config.split("/")[0])
    return tfds.data_source(name_config, split=split, data_dir=os.fspath(data_dir))


@dataclasses.dataclass(frozen=True, eq=False)
class Song:
    """A whole song (or an unbroken part of one) reassembled from its clip records."""

    song_id: str  # the recording's id; "<id>@<start s>" for a part after a gap
    start_sample: int  # where it starts in the recording
    drums: np.ndarray  # (L,) float32
    drumless: np.ndarray  # (L,) float32
    true_beats: np.ndarray  # (n, 2) s from the start, position in the bar; (0, 2) if unknown
    # (j, 3) s from the start, General MIDI key, MIDI velocity; (0, 3) if the records have none
    drum_notes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))

    @property
    def seconds(self) -> float:
        return len(self.drums) / audio.SAMPLE_RATE


def songs(source, max_songs: int = 0, shortest: bool = False) -> list[Song]:
    """The songs of a split, reassembled whole from their clip records.

    Clips of a song are laid out at their `start_sample` (overlapping clips hold the same audio)
    and their true beats and drum notes are merged. Whole songs are this, not a second copy in
    the dataset: it works for every builder. What the clips do not cover is missing: the tail
    after the last whole clip, and clips a builder dropped (`ClipConfig.drop_silent_drums`); a
    song with such a gap gives one `Song` per unbroken part ("<id>@<start s>").

    Args:
      source: a split's records (`data_source`).
      max_songs: the first `max_songs` songs by id; 0: all.
      shortest: take the `max_songs` songs with the fewest clips instead (ties by id), for a
        quick look; they are still returned in id order.

    Returns:
      Songs sorted by id (then start).
    """
    positions = collections.defaultdict(list)
    for i in range(len(source)):
        record = source[i]
        positions[_text(record["song_id"])].append((int(record["start_sample"]), i))
    song_ids = sorted(positions)
    if shortest:
        song_ids = sorted(song_ids, key=lambda song_id: len(positions[song_id]))
    if max_songs:
        song_ids = sorted(song_ids[:max_songs])
    out = []
    for song_id in song_ids:
        clips = [source[i] for _, i in sorted(positions[song_id])]
        parts = [[clips[0]]]
        for clip in clips[1:]:
            last = parts[-1][-1]
            if int(clip["start_sample"]) > int(last["start_sample"]) + len(last["drums"]):
                parts.append([])  # a gap
            parts[-1].append(clip)
        for part in parts:
            out.append(_reassemble(song_id if len(parts) == 1 else None, part))
    return out


def _reassemble(song_id: str | None, clips: list[dict]) -> Song:
    start = int(clips[0]["start_sample"])
    end = max(int(c["start_sample"]) + len(c["drums"]) for c in clips)
    stems = {key: np.zeros(end - start, np.float32) for key in ("drums", "drumless")}
    beats, notes = [], []
    for clip in clips:
        offset = int(clip["start_sample"]) - start
        for key, stem in stems.items():
            stem[offset : offset + len(clip[key])] = audio.from_pcm16(clip[key])
        clip_beats = np.asarray(clip.get("true_beats", np.zeros((0, 2))), np.float64).reshape(-1, 2)
        beats.append(clip_beats + [offset / audio.SAMPLE_RATE, 0.0])
        clip_notes = np.asarray(clip.get("drum_notes", np.zeros((0, 3))), np.float64).reshape(-1, 3)
        notes.append(clip_notes + [offset / audio.SAMPLE_RATE, 0.0, 0.0])
    beats, notes = np.concatenate(beats), np.concatenate(notes)
    # Overlapping clips repeat a beat or note (float32 times): keep one per millisecond (and key).
    _, first = np.unique(np.round(beats[:, 0], 3), return_index=True)
    note_keys = np.stack([np.round(notes[:, 0], 3), np.round(notes[:, 1])], axis=-1)
    _, first_note = np.unique(note_keys, axis=0, return_index=True)
    notes = notes[np.sort(first_note)]
    notes = notes[np.argsort(notes[:, 0], kind="stable")]
    if song_id is None:
        song_id = f"{_text(clips[0]['song_id'])}@{start / audio.SAMPLE_RATE:.1f}"
    return Song(song_id, start, stems["drums"], stems["drumless"], beats[np.sort(first)], notes)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def clip_dataset(
    source,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    num_epochs: int | None = 1,
    drop_remainder: bool = True,
) -> grain.MapDataset:
    """A grain pipeline over clip records: shuffle, repeat, float audio, batch.

    Each element is a dict of the fixed-shape fields (`BATCHED_FIELDS`) as NumPy arrays with a
    leading batch axis; `drums` and `drumless` are float32 in [-1, 1] (the int16 PCM / 32768).
    The ragged fields (`beats`, `true_beats`) and the ids are read from the source by index.
    """
    ds = record_dataset(source, seed, shuffle, num_epochs).map(_to_float_audio)
    return ds.batch(batch_size, drop_remainder=drop_remainder)


def record_dataset(
    source,
    seed: int = 0,
    shuffle: bool = True,
    num_epochs: int | None = 1,
    shard: grain.sharding.ShardOptions | None = None,
) -> grain.MapDataset:
    """Records of a source, shuffled by `seed` (per epoch) and repeated (None: forever).

    `shard` (e.g. `grain.sharding.ShardByJaxProcess(drop_remainder=True)` in a multi-process
    run) keeps records shard_index, shard_index + shard_count, ... only, so that the
    processes read disjoint parts of the source; with drop_remainder every shard has
    len(source) // shard_count records. None (or one shard) reads every record.
    """
    ds = grain.MapDataset.source(source)
    if shard is not None and shard.shard_count > 1:
        if shard.drop_remainder:
            ds = ds[: len(ds) - len(ds) % shard.shard_count]
        ds = ds[shard.shard_index :: shard.shard_count]
    if shuffle:
        ds = ds.seed(seed).shuffle()
    if num_epochs != 1:
        ds = ds.repeat(num_epochs)
    return ds


def _to_float_audio(record: dict) -> dict:
    out = {key: np.asarray(record[key]) for key in BATCHED_FIELDS}
    for key in ("drums", "drumless"):
        out[key] = audio.from_pcm16(out[key])
    return out
