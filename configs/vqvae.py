"""The mel VQ-VAEs (REFERENCE §2): shared by configs/vqvae_drums.py and vqvae_drumless.py."""

from __future__ import annotations

import ml_collections

from configs import common


def get_config(stem: str, codebook_size: int, arg: str | None) -> ml_collections.ConfigDict:
    args = common.parse_arg(arg, tiny=False)
    config = ml_collections.ConfigDict()
    config.stage = "vqvae"
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "synthstems/demo" if args.tiny else "jukedrummer"  # NAME[/CONFIG]
    config.data.data_dir = "data/tfds"
    config.data.stem = stem  # "drums" or "drumless"
    config.data.batch_size = 8 if args.tiny else 32  # global, over all devices; reference: 32
    config.data.stats_clips = 0  # train clips for the mel statistics; 0: every train clip
    # Probability of a random timbre augmentation (EQ, compression, reverb, gain; jdrum.augment)
    # of a train clip before its mel, per clip and epoch; 0: never.
    config.data.augment = 0.0

    config.model = ml_collections.ConfigDict()
    config.model.codebook_size = codebook_size  # drums 32, drumless 1024 (REFERENCE §2.3)
    config.model.width = 64 if args.tiny else 512  # the Sampler's hidden width
    config.model.latent = 64  # codebook vector width
    config.model.down = (0.5, 0.5)  # encoder time scale per stage (vq1: 4096 -> 1024 frames)
    config.model.up = (2, 2)  # decoder time scale per stage
    config.model.commit_beta = 0.02
    config.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay f32)

    config.mesh = common.mesh()  # devices: data-parallel, optionally fsdp (jdrum.parallel)

    config.opt = common.optimizer(lr=1e-3 if args.tiny else 3e-4, warmup_steps=100)

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 400 if args.tiny else 200_000
    config.train.log_every = 25 if args.tiny else 200
    config.train.eval_every = 0 if args.tiny else 5_000
    config.train.checkpoint_every = 200 if args.tiny else 5_000
    return config
