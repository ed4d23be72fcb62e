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

Expect (tiny, synthstems/demo, 2 CPU cores, ~2.5 minutes of which ~1 is start-up and
compilation; 175 mel-L1-only steps, then 25 with the discriminators): the held-out loss-mel L1
(`eval/mel_l1`, natural-log mel of 8 whole validation clips) ends near 1.24 (measured once:
1.2435); Griffin-Lim on the same mels (`eval/griffin_lim_mel_l1`) scores 0.09 (see
configs/hifigan_v1.py for why it stays ahead on this metric at this budget). The tiny model is
a smoke test of the stage, not a usable vocoder.
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
    config.model.dtype = "float32"  # compute dtype, "float32" or "bfloat16"

    # Vocos' AdamW: 5e-4, β (0.8, 0.9) (it decays with a cosine; here the stage's exponential
    # decay stays). Tiny keeps HiFi-GAN tiny's 1e-3.
    config.opt.lr = 1e-3 if tiny else 5e-4
    config.opt.b2 = 0.99 if tiny else 0.9

    if tiny:  # ~3 minutes on 2 CPU cores: a step with the discriminators costs ~4 without
        config.train.num_steps = 200
        config.train.discriminator_start = 175  # mel-L1-only steps first, as HiFi-GAN tiny
        config.train.checkpoint_every = 200
    return config
