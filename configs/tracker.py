"""The distilled beat trackers: a Flax BLSTM trained on one stem of the clip records.

Used by configs/tracker_drumless.py (the paper's "non-drum tracker") and
configs/tracker_drums.py (the "drum tracker" of the metrics); not a config file itself.
"""

from __future__ import annotations

import ml_collections

from configs import common


def get_config(stem: str, arg: str | None) -> ml_collections.ConfigDict:
    args = common.parse_arg(arg, tiny=False)
    config = ml_collections.ConfigDict()
    config.stage = "tracker"
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "synthstems/tiny" if args.tiny else "jukedrummer"  # NAME[/CONFIG]
    config.data.data_dir = "data/tfds"  # where `python -m jdrum.build_dataset` wrote it
    config.data.stem = stem  # the audio the tracker hears: "drumless" or "drums"
    # Beat targets: "truth" (the records' true_beats), "teacher" (madmom's downbeat ensemble
    # on the full mix) or "auto" (truth where a record has it, else the teacher).
    config.data.targets = "auto"
    config.data.batch_size = 8 if args.tiny else 16  # global, over all devices

    config.model = ml_collections.ConfigDict()
    config.model.num_layers = 3  # BLSTM layers
    config.model.hidden = 25  # units per direction; the embedding is 2 * hidden
    config.model.peephole = True  # madmom's LSTM cell
    config.model.init = "random"  # or "madmom": start from madmom's first downbeat network
    config.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay f32)

    config.mesh = common.mesh()  # devices: data-parallel, optionally fsdp (jdrum.parallel)

    config.opt = common.optimizer(lr=3e-3 if args.tiny else 1e-3, warmup_steps=50, clip=1.0)

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 400 if args.tiny else 30_000
    config.train.log_every = 25 if args.tiny else 200
    config.train.eval_every = 0 if args.tiny else 2_000  # 0: evaluate at the end only
    config.train.checkpoint_every = 200 if args.tiny else 2_000
    return config
