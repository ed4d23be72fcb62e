"""A dataset's clips as token records: `tokenize(run, dataset, data_dir)` encodes every split
with the run's two VQ-VAEs and writes `<run>/tokens/<dataset>/` (`jdrum.datasets.tokens`),
what the LM trains on. With `augment=N` every train record also holds the drumless codes of N
timbre augmentations of its drumless stem (`jdrum.augment`; view k of the clip at position i
is drawn from `np.random.default_rng((seed, i, k))`, so it does not depend on N or on the batch
size). The command line is `python -m jdrum.tokenize`.

Beat conditions: by default every record's come from its clip record's stored tracker outputs
(`beat_embedding`, `beat_activation`, `beats`: the tracker the dataset was built with). With
`tracker=NAME` ("madmom", "run:DIR", "da2:FILE"; a relative path is relative to the run
directory, as in `tracker.json`) that tracker runs on every clip's drumless stem instead,
exactly as a build with `ClipConfig(tracker=NAME)` would have (`records.beat_features`), and
`<run>/tracker.json` then names it, so sampling (`runs.run_tracker_name`) conditions the LM with
the tracker it was trained with. Without `tracker`, a run whose `tracker.json` exists is
tokenized with the tracker it names (its LM is sampled with that one, so it must also be trained
on it); a `tracker` other than the one `tracker.json` names is refused (`conditioning_tracker`).
"""

from __future__ import annotations

import json
import os

import grain
import numpy as np
import tqdm

from jdrum import audio, data, runs
from jdrum import augment as timbre
from jdrum.datasets import records, tokens


class Tokenizer:
    """The two VQ-VAEs of a run: clip audio in, (drum codes, drumless codes) out."""

    def __init__(self, run: str):
        self.codecs = {
            stem: runs.load_codec(os.path.join(run, runs.VQVAE_DIRS[stem])) for stem in tokens.STEMS
        }

    def __call__(self, stem: str, pcm_BxL: np.ndarray) -> np.ndarray:
        """(B, S) codes of int16 PCM clips (B, L) of `stem` ("drums" or "drumless")."""
        return np.asarray(self.codecs[stem].encode_pcm16(pcm_BxL))


def augmented_views(pcm_BxL: np.ndarray, positions, augment: int, seed: int) -> np.ndarray:
    """(augment, B, L) int16 PCM: view k of clip b (at split position positions[b]) is
    `timbre.augment_pcm16` with the generator `np.random.default_rng((seed, position, k))`."""
    return np.stack(
        [
            np.stack(
                [
                    timbre.augment_pcm16(pcm_L, np.random.default_rng((seed, int(i), k)))
                    for pcm_L, i in zip(pcm_BxL, positions, strict=True)
                ]
            )
            for k in range(augment)
        ]
    )


def resolve_tracker(run: str, name: str) -> str:
    """`name` with a relative "run:"/"da2:" path made relative to the run directory, as
    `runs.run_tracker_name` reads `tracker.json`."""
    kind, sep, location = name.partition(":")
    if sep and not os.path.isabs(location):
        return f"{kind}:{os.path.join(run, location)}"
    return name


def _same_tracker(run: str, a: str, b: str) -> bool:
    def key(name):
        kind, sep, location = resolve_tracker(run, name).partition(":")
        return (kind, os.path.realpath(location)) if sep else (name, "")

    return key(a) == key(b)


def conditioning_tracker(run: str, tracker: str | None = None) -> str | None:
    """The tracker whose outputs give the records' beat conditions, as `tracker.json` spells it
    (None: the clip records' stored outputs): `tracker` if given, else the one the run's
    `tracker.json` names, else None.

    Raises:
      ValueError: `tracker` contradicts the run's `tracker.json`.
    """
    path = os.path.join(run, runs.TRACKER_FILE)
    if not os.path.exists(path):
        return tracker
    with open(path) as f:
        named = json.load(f)["tracker"]
    if tracker is not None and not _same_tracker(run, tracker, named):
        raise ValueError(
            f"tracker {tracker} contradicts {path} ({named}): omit the tracker to use {named}, "
            "or tokenize into a run without tracker.json"
        )
    return named if tracker is None else tracker


def write_tracker_file(run: str, tracker: str) -> None:
    """`<run>/tracker.json` naming `tracker` (spelt as given: a relative path stays relative to
    the run directory), the tracker `runs.run_tracker_name` gives sampling."""
    with open(os.path.join(run, runs.TRACKER_FILE), "w") as f:
        json.dump({"tracker": tracker}, f)


def retracked(clips: list[dict], tracker: str) -> list[dict]:
    """The clip records with `beat_embedding`, `beat_activation` and `beats` recomputed by the
    tracker `tracker` (resolved name) on their drumless stems, as a dataset build with that
    tracker stores them (`records.beat_features`)."""
    drumless_BxL = np.stack([audio.from_pcm16(np.asarray(c["drumless"], np.int16)) for c in clips])
    config = records.ClipConfig(clip_length=drumless_BxL.shape[1], tracker=tracker)
    embedding, activation, beats = records.beat_features(drumless_BxL, config)
    fields = {"beat_embedding": embedding, "beat_activation": activation, "beats": beats}
    return [
        {**clip, **{name: values[k] for name, values in fields.items()}}
        for k, clip in enumerate(clips)
    ]


def tokenize(
    run: str,
    dataset: str,
    data_dir: str,
    batch_size: int = 16,
    augment: int = 0,
    seed: int = 0,
    tracker: str | None = None,
) -> dict[str, int]:
    """Writes the token records of every split; returns {split: records written}.

    Args:
      run: run directory holding vqvae_drums/ and vqvae_drumless/.
      dataset: built dataset NAME[/CONFIG].
      data_dir: where it is built.
      batch_size: clips per encoder call.
      augment: augmented drumless views per train record (`drumless_codes_augmented`);
        0 writes no such field (the other splits never have it).
      seed: seed of the augmentations.
      tracker: the tracker ("madmom", "run:DIR", "da2:FILE"; relative paths from the run
        directory) run on the drumless stems for the beat conditions, then named in
        `<run>/tracker.json`; None: the one `tracker.json` names, else the clip records' stored
        outputs (module docstring).

    Raises:
      ValueError: `tracker` contradicts the run's `tracker.json`, or names no tracker.
    """
    tracker = conditioning_tracker(run, tracker)
    resolved = None if tracker is None else resolve_tracker(run, tracker)
    if resolved is not None:
        runs.tracker(resolved)  # loads it now: a wrong name fails before any encoding
    tokenizer = Tokenizer(run)
    counts = {}
    for split in records.SPLITS:
        try:
            source = data.data_source(dataset, split, data_dir)
        except (KeyError, ValueError):
            continue  # a split the dataset does not have
        views = augment if split == "train" else 0

        def split_records(source=source, split=split, views=views):
            batches = grain.MapDataset.range(len(source)).batch(batch_size)
            for indices in tqdm.tqdm(batches, desc=f"{dataset} {split}", unit="batch"):
                clips = [source[int(i)] for i in indices]
                if resolved is not None:
                    clips = retracked(clips, resolved)
                pcm = {
                    s: np.stack([np.asarray(c[s], np.int16) for c in clips]) for s in tokens.STEMS
                }
                codes = {stem: tokenizer(stem, pcm[stem]) for stem in tokens.STEMS}
                augmented = None
                if views:  # (views, B, S): each view of the batch in one call, as the plain clips
                    pcm_views = augmented_views(pcm["drumless"], indices, views, seed)
                    augmented = np.stack([tokenizer("drumless", p) for p in pcm_views])
                for k, clip in enumerate(clips):
                    yield tokens.token_record(
                        clip,
                        codes["drums"][k],
                        codes["drumless"][k],
                        None if augmented is None else augmented[:, k],
                    )

        counts[split] = tokens.write_records(run, dataset, split, split_records())
    tokens.write_info(run, dataset, counts, augment, tracker)
    if tracker is not None and not os.path.exists(os.path.join(run, runs.TRACKER_FILE)):
        write_tracker_file(run, tracker)
    return counts
