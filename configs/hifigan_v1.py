"""HiFi-GAN V1 vocoder on the drum stem, trained on real log10 mels (REFERENCE §6).

    python -m jdrum.train --config configs/hifigan_v1.py --workdir runs/NAME/vocoder
    python -m jdrum.train --config configs/hifigan_v1.py:tiny --workdir runs/demo/vocoder

Expect (tiny, synthstems/demo, 2 CPU cores, ~3-4 minutes of which ~1 is compilation; 300
mel-L1-only steps, then 100 with the discriminators): the held-out loss-mel L1 (`eval/mel_l1`,
natural-log mel of 8 whole validation clips; silence scores ~5.7) ends near 0.73 and is still
falling. Griffin-Lim on the same mels
(`eval/griffin_lim_mel_l1`, 32 iterations) scores 0.11: it is given the exact STFT magnitudes
and this L1 is its own objective, so it stays ahead on this metric at this budget
(`eval/mel_l1_over_griffin_lim` ~7); the tiny vocoder is a smoke test of the stage, not a
usable vocoder, and `make demo` samples with Griffin-Lim.
"""

from __future__ import annotations

import ml_collections

from configs import common


def get_config(arg=None, finetune: bool = False) -> ml_collections.ConfigDict:
    args = common.parse_arg(arg, tiny=False)
    tiny = args.tiny
    config = ml_collections.ConfigDict()
    config.stage = "vocoder"
    config.seed = 1234  # the reference's seed

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "synthstems/demo" if tiny else "jukedrummer"  # NAME[/CONFIG]
    config.data.data_dir = "data/tfds"
    config.data.stem = "drums"
    config.data.batch_size = 8 if tiny else 16  # reference: 16
    config.data.segment_length = 8192  # samples per training segment (32 mel frames)
    # Fine-tune mode: a drum VQ-VAE run whose reconstructions are the generator input;
    # "" trains on the real mels.
    config.data.vqvae_run = ""
    if finetune:
        config.data.vqvae_run = "runs/demo/vqvae_drums" if tiny else "runs/official/vqvae_drums"

    config.model = ml_collections.ConfigDict()
    config.model.generator = "hifigan_v1"  # jdrum.runs.GENERATORS: "hifigan_v1" or "vocos"
    # Width after conv_pre, halved per stage. On CPU, small convolutions are overhead-bound:
    # 128 channels cost about what 32 do.
    config.model.upsample_initial_channel = 128 if tiny else 512
    config.model.upsample_rates = (8, 8, 2, 2)  # product = the mel hop, 256
    config.model.upsample_kernel_sizes = (16, 16, 4, 4)
    config.model.resblock_kernel_sizes = (3, 7, 11)
    config.model.resblock_dilations = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    config.model.n_mels = 80
    # N(0, init_std²) kernels (the reference's intent); 0: PyTorch's default init, what the
    # reference actually trains with (its init_weights has no effect under weight norm).
    config.model.init_std = 0.0
    config.model.dtype = "float32"  # compute dtype, "float32" or "bfloat16"

    config.discriminator = ml_collections.ConfigDict()
    config.discriminator.width_divisor = 32 if tiny else 1  # divides every MPD/MSD width
    config.discriminator.periods = (2, 3, 5, 7, 11)
    config.discriminator.scales = 3  # MSD scales: the wave, pooled once, pooled twice

    config.loss = ml_collections.ConfigDict()
    config.loss.adversarial = 1.0  # weight of the LSGAN generator loss
    config.loss.mel = 45.0  # weight of the loss-mel L1
    config.loss.feature_matching = 2.0  # weight of the feature-matching loss
    # Weight of the multi-resolution STFT loss (`jdrum.losses.stft_loss`: log-magnitude L1 +
    # spectral convergence at FFT sizes 512, 1024, 2048); 0: HiFi-GAN's losses only.
    config.loss.stft = 0.0

    config.opt = ml_collections.ConfigDict()
    config.opt.lr = 1e-3 if tiny else 2e-4  # AdamW, the same for generator and discriminators
    config.opt.b1 = 0.8
    config.opt.b2 = 0.99
    config.opt.eps = 1e-8
    config.opt.weight_decay = 0.01  # torch AdamW's default, which the reference keeps
    config.opt.lr_decay = 0.999  # ExponentialLR factor per epoch, applied smoothly per step
    # Steps per decay "epoch"; 0: the train clips // batch_size (one segment per clip).
    config.opt.steps_per_epoch = 0

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 400 if tiny else 2_500_000
    config.train.log_every = 25 if tiny else 200
    config.train.eval_every = 0 if tiny else 10_000
    config.train.checkpoint_every = 200 if tiny else 5_000
    # Steps that train the generator on the mel L1 alone before the discriminators start
    # (0: from the first step, as the reference does). Such steps cost a third of a full one.
    config.train.discriminator_start = 300 if tiny else 0

    config.mesh = common.mesh()  # devices: data-parallel (and optional fsdp) axes

    config.eval = ml_collections.ConfigDict()
    config.eval.num_clips = 8 if tiny else 0  # validation clips vocoded per evaluation; 0: all
    config.eval.batch_size = 4
    config.eval.griffin_lim_iters = 32  # iterations of the Griffin-Lim baseline
    return config
