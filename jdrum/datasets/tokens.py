"""Token records: a dataset's clips encoded by a run's two VQ-VAEs (DESIGN §3).

`jdrum.inference.tokenizer.tokenize(run, dataset, data_dir)` writes, for every split,
`<run>/tokens/<dataset>/<split>.array_record` (`write_records`): one record per clip with
`drum_codes`, `drumless_codes` (tokens,), the beat conditions at the token rate (`beat_low`
(tokens, 50), `beat_mid`, `beat_high` (tokens,): madmom's default DBN; `beat_high_reference`:
the REFERENCE §4.3 DBN, for LMs with `high_dbn="reference"`) and the clip's ids; `token_source`
reads them back. Train records of a tokenization with `augment=N` also hold
`drumless_codes_augmented` (N, tokens): the drumless codes of N random timbre augmentations of
the clip's drumless stem (`jdrum.augment`), which the LM trainer swaps in with probability
`config.data.augment`. The beat conditions come from the clip record's stored tracker outputs
(`beat_embedding`, `beat_activation`, `beats`), which a tokenization with a tracker
(`python -m jdrum.tokenize --tracker NAME`) replaces by that tracker's on the drumless stem
before `token_record`. `info.json` (`write_info`) records the dataset, the record counts, N and
that tracker, if any.
The command line is `python -m jdrum.tokenize`.
"""

from __future__ import annotations

import json
import os

import grain
import numpy as np
from array_record.python import array_record_module
from flax import serialization

from jdrum.beat import conditions

STEMS = ("drums", "drumless")
AUGMENTED = "drumless_codes_augmented"  # (views, tokens) field of augmented train records


def token_dir(run: str, dataset: str) -> str:
    return os.path.join(run, "tokens", dataset.replace("/", "_"))


def token_path(run: str, dataset: str, split: str) -> str:
    return os.path.join(token_dir(run, dataset), f"{split}.array_record")


def token_record(
    record: dict,
    drum_codes: np.ndarray,
    drumless_codes: np.ndarray,
    drumless_codes_augmented: np.ndarray | None = None,
) -> dict:
    """A clip record's token record: codes, beat conditions on the token grid, ids, and the
    drumless codes of augmented views (N, tokens) where given (None: no such field)."""
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
    out = {
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
    if drumless_codes_augmented is not None:
        out[AUGMENTED] = np.asarray(drumless_codes_augmented, np.int32)
    return out


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def write_records(run: str, dataset: str, split: str, items) -> int:
    """Writes token records (dicts as `token_record` makes) as one split; returns the count.

    The file appears only when complete, so a killed run never leaves a half file in place.
    """
    os.makedirs(token_dir(run, dataset), exist_ok=True)
    path = token_path(run, dataset, split)
    writer = array_record_module.ArrayRecordWriter(path + ".tmp", "group_size:1")
    count = 0
    for item in items:
        writer.write(serialization.msgpack_serialize(item))
        count += 1
    writer.close()
    os.replace(path + ".tmp", path)
    return count


def write_info(
    run: str, dataset: str, counts: dict[str, int], augment: int = 0, tracker: str | None = None
) -> None:
    """`info.json` beside the splits: written last, so its presence means a complete set.
    `augment`: augmented drumless views per train record (0: none); `tracker`: the tracker
    whose outputs the beat conditions are (a "tracker" field; None: none, the clip records'
    stored outputs)."""
    info = {"dataset": dataset, "records": counts, "augment": augment}
    if tracker is not None:
        info["tracker"] = tracker
    with open(os.path.join(token_dir(run, dataset), "info.json"), "w") as f:
        json.dump(info, f, indent=2)


def token_source(run: str, dataset: str, split: str):
    """Random-access source of token records (dicts of NumPy arrays and ids)."""
    path = token_path(run, dataset, split)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no token records; run python -m jdrum.tokenize first")
    source = grain.sources.ArrayRecordDataSource([path])
    return grain.MapDataset.source(source).map(serialization.msgpack_restore)
