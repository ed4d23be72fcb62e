"""A dataset's clips as token records: `tokenize(run, dataset, data_dir)` encodes every split
with the run's two VQ-VAEs and writes `<run>/tokens/<dataset>/` (`jdrum.datasets.tokens`),
what the LM trains on. The command line is `python -m jdrum.tokenize`.
"""

from __future__ import annotations

import os

import grain
import numpy as np
import tqdm

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


def tokenize(run: str, dataset: str, data_dir: str, batch_size: int = 16) -> dict[str, int]:
    """Writes the token records of every split; returns {split: records written}."""
    tokenizer = Tokenizer(run)
    counts = {}
    for split in records.SPLITS:
        try:
            source = data.data_source(dataset, split, data_dir)
        except (KeyError, ValueError):
            continue  # a split the dataset does not have

        def split_records(source=source, split=split):
            batches = grain.MapDataset.range(len(source)).batch(batch_size)
            for indices in tqdm.tqdm(batches, desc=f"{dataset} {split}", unit="batch"):
                clips = [source[int(i)] for i in indices]
                codes = {
                    stem: tokenizer(stem, np.stack([np.asarray(c[stem], np.int16) for c in clips]))
                    for stem in tokens.STEMS
                }
                for k, clip in enumerate(clips):
                    yield tokens.token_record(clip, codes["drums"][k], codes["drumless"][k])

        counts[split] = tokens.write_records(run, dataset, split, split_records())
    tokens.write_info(run, dataset, counts)
    return counts
