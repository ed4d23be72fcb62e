"""Builds a dataset of `tfds_builders/` to array_record clip records.

    python -m jdrum.build_dataset synthstems/tiny --data_dir data/tfds
    python -m jdrum.build_dataset musdb18 --manual_dir ~/data/musdb18hq --data_dir data/tfds \
        --num_workers 8

TFDS's own `tfds build` CLI works too where TensorFlow is installed; this entry point needs none.
"""

from __future__ import annotations

import sys
import time

from absl import app, flags, logging

from jdrum import console, data

_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "Where the built dataset is written.")
_MANUAL_DIR = flags.DEFINE_string(
    "manual_dir", None, "Folder holding a downloaded dataset (for builders that need one)."
)
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", 1, "Processes that load (or render) and cut songs in parallel.", lower_bound=1
)


def main(argv):
    if len(argv) != 2:
        raise app.UsageError(
            f"usage: python -m jdrum.build_dataset NAME[/CONFIG] --data_dir DIR; "
            f"NAME is one of {', '.join(data.builder_names())}"
        )
    import tensorflow_datasets as tfds

    console.quiet_libraries(own_info=True)
    start = time.perf_counter()
    # Unknown names and broken dataset folders end in one line naming the problem, no trace.
    try:
        builder = data.builder(argv[1], _DATA_DIR.value, num_workers=_NUM_WORKERS.value)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=_MANUAL_DIR.value)
        )
    except ValueError as error:  # also multitrack.DatasetError and audio.AudioError
        sys.exit(f"jdrum.build_dataset: {error}")
    splits = ", ".join(f"{k}: {v.num_examples}" for k, v in builder.info.splits.items())
    seconds = time.perf_counter() - start
    logging.info("built %s in %.1f s", builder.info.full_name, seconds)
    print(f"{builder.data_dir} ({splits}; {seconds:.0f} s)")


if __name__ == "__main__":
    app.run(main)
