"""HiFi-GAN V1 fine-tuned on the drum VQ-VAE's reconstructions (REFERENCE §6.2, fine-tune mode).

The generator input is the drum VQ-VAE's de-normalised reconstruction of the clip's mel (what
the generator receives at inference), cropped at the 32-frame window of the audio segment.
`config.data.vqvae_run` names the VQ-VAE run (default: runs/official/vqvae_drums, what
`python -m jdrum.convert` writes; tiny: runs/demo/vqvae_drums, what `make demo` trains).
To start from a trained plain vocoder, copy its `checkpoints/` into the new workdir (training
continues from its step, so raise `--config.train.num_steps`).

    python -m jdrum.train --config configs/hifigan_v1_finetune.py \\
        --config.data.vqvae_run=runs/NAME/vqvae_drums --workdir runs/NAME/vocoder
    python -m jdrum.train --config configs/hifigan_v1_finetune.py:tiny --workdir runs/demo/vocoder

Expect (tiny, synthstems/demo, 2 CPU cores, ~4 minutes after the demo's VQ-VAE): Griffin-Lim
on the reconstructions scores ~0.6 (`eval/griffin_lim_mel_l1`, dominated by the tiny VQ-VAE's
own error), the generator's `eval/mel_l1` falls towards it from above as in the plain config.
"""

from configs import hifigan_v1


def get_config(arg=None):
    return hifigan_v1.get_config(arg, finetune=True)
