"""A dataset's clips as token records: `tokenize(run, dataset, data_dir)` encodes every split
with the run's two VQ-VAEs and writes `<run>/tokens/<dataset>/` (`jdrum.datasets.tokens`),
what the LM trains on. With `augment=N` every train record also holds the drumless codes of N
timbre augmentations of its drumless stem (`jdrum.augment`; view k of the clip at position i
is drawn from `np.random.default_rng((seed, i, k))`, so it does not depend on N or on the batch
size). The command line is `python -m jdrum.tokenize`.
"""

from __future__ import annotations

import os

import grain
import numpy as np
import tqdm

from jdrum import augment as timbre
from jdrum import data, runs
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


def tokenize(
    run: str,
    dataset: str,
    data_dir: str,
    batch_size: int = 16,
    augment: int = 0,
    seed: int = 0,
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
    """
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
    tokens.write_info(run, dataset, counts, augment)
    return counts
