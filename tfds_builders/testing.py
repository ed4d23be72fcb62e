"""What the multitrack builders' tests share: a small clip config, build, read back, check."""

from __future__ import annotations

import glob
import os

import tensorflow_datasets as tfds

from jdrum.datasets import multitrack, records

# Clips short enough for fake datasets of a few seconds per song.
SMALL_CLIP = records.ClipConfig(clip_length=2**16, hop_length=2**15)


def build(
    builder_class,
    manual_dir,
    data_dir,
    config_class=multitrack.MultitrackConfig,
    num_workers: int = 1,
    **kw,
):
    """Builds `builder_class` from the folder `manual_dir` with a "test" config of SMALL_CLIP
    (`kw`: more config fields) in `num_workers` processes."""
    config = config_class(name="test", clip=SMALL_CLIP, **kw)
    builder = builder_class(
        config=config, data_dir=str(data_dir), file_format="array_record", num_workers=num_workers
    )
    download_config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    builder.download_and_prepare(download_config=download_config)
    return builder


def read_all(builder) -> dict[str, list[dict]]:
    """{split: every record} of a built builder."""
    return {
        split: [source[i] for i in range(len(source))]
        for split, source in builder.as_data_source().items()
    }


def finished(data_dir, name: str) -> bool:
    """Whether a test build of dataset `name` (any version) in `data_dir` looks complete."""
    pattern = os.path.join(glob.escape(os.fspath(data_dir)), name, "test", "*", "dataset_info.json")
    return bool(glob.glob(pattern))
