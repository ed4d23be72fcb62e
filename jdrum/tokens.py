"""Token records: a dataset's clips encoded by a run's two VQ-VAEs (DESIGN §3).

`tokenize(run, dataset, data_dir)` writes, for every split,
`<run>/tokens/<dataset>/<split>.array_record`: one record per clip with `drum_codes`,
`drumless_codes` (tokens,), the beat conditions at the token rate (`beat_low` (tokens, 50),
`beat_mid`, `beat_high` (tokens,): madmom's default DBN; `beat_high_reference`: the REFERENCE
§4.3 DBN, for LMs with `high_dbn="reference"`) and the clip's ids; `token_source` reads them back.
The command line is `python -m jdrum.tokenize`.
"""

from __future__ import annotations

import functools
import json
import os

import grain
import jax
import numpy as np
import tqdm
from array_record.python import array_record_module
from flax import serialization

from jdrum import audio, data, records
from jdrum.beat import conditions
from jdrum.trainers import vqvae as vqvae_trainer

STEMS = ("drums", "drumless")


def token_dir(run: str, dataset: str) -> str:
    return os.path.join(run, "tokens", dataset.replace("/", "_"))


@functools.partial(jax.jit, static_argnums=0)
def _encode(model, variables, mean, std, pcm_BxL):
    mel_BxMxT = audio.log_mel(audio.from_pcm16(pcm_BxL))
    normalised = (mel_BxMxT - mean[None, :, None]) / std[None, :, None]
    return model.apply(variables, normalised, method=model.encode)


class Tokenizer:
    """The two VQ-VAEs of a run: clip audio in, (drum codes, drumless codes) out."""

    def __init__(self, run: str):
        self.vqvaes = {
            stem: vqvae_trainer.load(os.path.join(run, f"vqvae_{stem}")) for stem in STEMS
        }

    def __call__(self, stem: str, pcm_BxL: np.ndarray) -> np.ndarray:
        model, variables, stats = self.vqvaes[stem]
        return np.asarray(_encode(model, variables, stats.mean, stats.std, pcm_BxL))


def token_record(record: dict, drum_codes: np.ndarray, drumless_codes: np.ndarray) -> dict:
    """A clip record's token record: codes, beat conditions on the token grid, ids."""
    num_samples = len(record["drums"])
    probabilities = np.asarray(record["beat_activation"], np.float32)
    # The record's `beats` are madmom's default DBN on these activations (`records.beat_features`).
    beat = conditions.beat_conditions(
        np.asarray(record["beat_embedding"], np.float32),
        probabilities,
        num_samples,
        beats_Nx2=np.asarray(record["beats"], np.float64),
    )
    high_reference = conditions.high_condition(
        conditions.dbn_high_beats(probabilities), num_samples
    )
    return {
        "drum_codes": drum_codes.astype(np.int32),
        "drumless_codes": drumless_codes.astype(np.int32),
        "beat_low": beat["low"].astype(np.float16),
        "beat_mid": beat["mid"].astype(np.int8),
        "beat_high": beat["high"].astype(np.int8),
        "beat_high_reference": high_reference.astype(np.int8),
        "song_id": _text(record["song_id"]),
        "source": _text(record["source"]),
        "clip_index": int(record["clip_index"]),
        "start_sample": int(record["start_sample"]),
    }


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
                    for stem in STEMS
                }
                for k, clip in enumerate(clips):
                    yield token_record(clip, codes["drums"][k], codes["drumless"][k])

        counts[split] = write_records(run, dataset, split, split_records())
    with open(os.path.join(token_dir(run, dataset), "info.json"), "w") as f:
        json.dump({"dataset": dataset, "records": counts}, f, indent=2)
    return counts


def write_records(run: str, dataset: str, split: str, items) -> int:
    """Writes token records (dicts as `token_record` makes) as one split; returns the count.

    The file appears only when complete, so a killed run never leaves a half file in place.
    """
    out_dir = token_dir(run, dataset)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{split}.array_record")
    writer = array_record_module.ArrayRecordWriter(path + ".tmp", "group_size:1")
    count = 0
    for item in items:
        writer.write(serialization.msgpack_serialize(item))
        count += 1
    writer.close()
    os.replace(path + ".tmp", path)
    return count


def token_source(run: str, dataset: str, split: str):
    """Random-access source of token records (dicts of NumPy arrays and ids)."""
    path = os.path.join(token_dir(run, dataset), f"{split}.array_record")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no token records; run python -m jdrum.tokenize first")
    source = grain.sources.ArrayRecordDataSource([path])
    return grain.MapDataset.source(source).map(serialization.msgpack_restore)
