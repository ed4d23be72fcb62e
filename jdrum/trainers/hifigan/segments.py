"""HiFi-GAN training data: random segments of the clips' drum stems with their mel windows,
and the fine-tune mels (the drum VQ-VAE's reconstructions, computed once per split)."""

from __future__ import annotations

import json
import os

import grain
import numpy as np
from absl import logging

from jdrum import data, runs
from jdrum.trainers.hifigan.state import SPEC

CONTEXT_FRAMES = 2  # mel frames cut on both sides of a segment: 512 samples ≥ the 384 STFT pad


class _Clips:
    """Random-access drum stems of a split, with their index (for the fine-tune mel cache)."""

    def __init__(self, source, stem: str):
        self._source, self._stem = source, stem

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict:
        return {"pcm": np.asarray(self._source[index][self._stem], np.int16), "index": index}


def segments(
    config, mels: np.ndarray | None, num_epochs: int | None, batch_size=None, shard=None
) -> grain.MapDataset:
    """Batches {"excerpt": int16 (B, segment + 2·context)[, "mel": (B, n_mels, frames)]} of
    `batch_size` (default `config.data.batch_size`) from the records of `shard` (default all)."""
    source = data.data_source(config.data.dataset, "train", config.data.data_dir)
    hop, segment = SPEC.hop_length, config.data.segment_length
    if segment % hop:
        raise ValueError(f"segment_length {segment} is not a multiple of the hop {hop}")
    context = CONTEXT_FRAMES * hop
    frames = segment // hop

    def crop(record: dict, rng: np.random.Generator) -> dict:
        pcm = record["pcm"]
        if len(pcm) < segment:
            raise ValueError(f"a clip of {len(pcm)} samples is shorter than the segment {segment}")
        start_frame = int(rng.integers(0, (len(pcm) - segment) // hop + 1))
        padded = np.pad(pcm, context, mode="reflect")  # as the front end pads the whole clip
        start = start_frame * hop
        out = {"excerpt": padded[start : start + segment + 2 * context]}
        if mels is not None:
            out["mel"] = np.asarray(mels[record["index"], :, start_frame : start_frame + frames])
        return out

    clips = _Clips(source, config.data.stem)
    ds = data.record_dataset(clips, config.seed, True, num_epochs, shard)
    ds = ds.random_map(crop, seed=config.seed)
    return ds.batch(batch_size or config.data.batch_size, drop_remainder=True)


def finetune_mels(config, split: str, workdir: str) -> np.ndarray:
    """The drum VQ-VAE's de-normalised reconstructions (clips, n_mels, frames) of a split,
    computed once into `<workdir>/finetune_mels/<split>.npy` (memory-mapped; recomputed when
    the VQ-VAE run, its latest step or the dataset change)."""
    source = data.data_source(config.data.dataset, split, config.data.data_dir)
    directory = os.path.join(workdir, "finetune_mels")
    path = os.path.join(directory, f"{split}.npy")
    meta_path = path + ".json"
    vqvae_run = os.path.abspath(config.data.vqvae_run)
    step = runs.latest_step(vqvae_run)
    meta = {
        "vqvae_run": vqvae_run,
        "vqvae_step": step,
        "dataset": config.data.dataset,
        "clips": len(source),
    }
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path) as f:
            if json.load(f) == meta:
                return np.load(path, mmap_mode="r")
    codec = runs.load_codec(vqvae_run)
    num_frames = SPEC.num_frames(len(source[0][config.data.stem])) if len(source) else 0
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp.npy"
    shape = (len(source), config.model.n_mels, num_frames)
    mels = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    batch = config.data.batch_size
    logging.info("fine-tune mels of %d %s clips from %s", len(source), split, vqvae_run)
    for begin in range(0, len(source), batch):
        indices = range(begin, min(begin + batch, len(source)))
        pcm = np.stack([np.asarray(source[i][config.data.stem], np.int16) for i in indices])
        mels[begin : begin + len(indices)] = np.asarray(codec.reconstruct_pcm16(pcm))
    mels.flush()
    del mels
    os.replace(tmp, path)
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    return np.load(path, mmap_mode="r")
