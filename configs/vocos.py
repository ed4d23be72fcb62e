"""Vocos-style vocoder on the drum stem: ConvNeXt blocks and an ISTFT head (Siuzdak 2023),
trained by the vocoder stage with HiFi-GAN's data, discriminators and losses.

    python -m jdrum.train --config configs/vocos.py --workdir runs/NAME/vocoder
    python -m jdrum.train --config configs/vocos.py:tiny --workdir runs/demo/vocoder
    python -m jdrum.train --config configs/vocos.py:finetune \\
        --config.data.vqvae_run=runs/NAME/vqvae_drums --workdir runs/NAME/vocoder

Arguments (`:a,b`): `tiny` (a CPU-sized model and schedule on synthstems/demo) and `finetune`
(the generator input is the drum VQ-VAE's reconstruction, as in configs/hifigan_v1_finetune.py).
Everything but `config.model`, the optimizer, the segment length and the tiny schedule comes
from configs/hifigan_v1.py: the same segments of the drum stem, MPD + MSD (LSGAN),
2 × feature matching + 45 × loss-mel L1 (Vocos itself uses a hinge loss and a multi-resolution
discriminator). `config.model.generator = "vocos"` makes `jdrum.runs.load_vocoder`,
`jdrum.inference.vocode` and `--vocoder auto` use it.

Tiny (2 CPU cores, synthstems/demo) departs from Vocos in three ways, each measured on the
demo's held-out songs: the head's log-magnitude is added to a first guess from the mel
(`config.model.magnitude_prior`, as FreeV does), the generator also descends the
multi-resolution STFT loss (`config.loss.stft`; it is the paired sound measure's own
definition), and it never meets the discriminators (a step with them costs about 4x one
without, which this budget cannot pay). The plain run takes 1,000 steps (~3.5 minutes with
start-up), the fine-tune run 400 more on the drum VQ-VAE's reconstructions (~2 minutes).
Expect the held-out `eval/mel_l1` near 0.20 after the plain run (Griffin-Lim: 0.09) and near
0.53 after fine-tuning (Griffin-Lim on the same reconstructions: 0.58); the README's vocoder
section gives the paired STFT distance and onset F1 of every stage against Griffin-Lim.

    python -m jdrum.train --config configs/vocos.py:tiny --workdir runs/demo/vocoder
    python -m jdrum.train --config configs/vocos.py:tiny,finetune --workdir runs/demo/vocoder
"""

from __future__ import annotations

import ml_collections

from configs import common, hifigan_v1


def get_config(arg=None) -> ml_collections.ConfigDict:
    args = common.parse_arg(arg, tiny=False, finetune=False)
    tiny = args.tiny
    config = hifigan_v1.get_config("tiny" if tiny else None, finetune=args.finetune)
    # Vocos trains on 16384-sample segments (64 mel frames); tiny keeps HiFi-GAN's 8192.
    config.data.segment_length = 8192 if tiny else 16384

    config.model = ml_collections.ConfigDict()
    config.model.generator = "vocos"  # jdrum.runs.GENERATORS: "hifigan_v1" or "vocos"
    config.model.n_mels = 80
    config.model.dim = 128 if tiny else 512  # ConvNeXt width (the paper's mel model: 512)
    config.model.intermediate = 384 if tiny else 1536  # pointwise MLP width (3 × dim)
    config.model.num_layers = 4 if tiny else 8  # ConvNeXt blocks
    config.model.kernel_size = 7  # the embedding's and the depthwise convolutions' kernel
    config.model.n_fft = 1024  # ISTFT frame and periodic Hann window
    config.model.hop_length = 256  # ISTFT hop = the mel hop: T frames give T·256 samples
    config.model.layer_scale = 0.0  # initial layer scale γ; 0: 1 / num_layers
    # The head's log-magnitude is a correction to `jdrum.models.vocos.prior_log_magnitude` (a
    # guess of the STFT magnitude from the mel) instead of the magnitude itself: at 400 steps
    # the STFT distance falls from 1.74 to 1.13 on held-out songs (Griffin-Lim: 0.91).
    config.model.magnitude_prior = tiny
    config.model.dtype = "float32"  # compute dtype, "float32" or "bfloat16"

    # Vocos' AdamW: 5e-4, β (0.8, 0.9) (it decays with a cosine; here the stage's exponential
    # decay stays). Tiny keeps HiFi-GAN tiny's 1e-3.
    config.opt.lr = 1e-3 if tiny else 5e-4
    config.opt.b2 = 0.99 if tiny else 0.9

    if tiny:  # ~3-4 minutes on 2 CPU cores, + ~1.5 to fine-tune
        config.loss.stft = 45.0  # the multi-resolution STFT loss, as heavy as the mel L1
        config.train.num_steps = 1400 if args.finetune else 1000
        config.train.discriminator_start = config.train.num_steps  # never (docstring)
        config.train.checkpoint_every = 200
        config.train.log_every = 50
        # 1e-3 decaying to 2e-4 over the first 1,000 steps (0.9984^1000 = 0.2).
        config.opt.steps_per_epoch = 1
        config.opt.lr_decay = 0.9984
    return config
