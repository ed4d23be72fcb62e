"""HiFi-GAN V1 fine-tuned on the drum VQ-VAE's reconstructions (REFERENCE §6.2, fine-tune mode).

The generator input is the drum VQ-VAE's de-normalised reconstruction of the clip's mel (what
the generator receives at inference), cropped at the 32-frame window of the audio segment.
`config.data.vqvae_run` names the VQ-VAE run (default: runs/official/vqvae_drums, what
`python -m jdrum.convert` writes; tiny: runs/demo/vqvae_drums, what `make demo` trains).
To start from a trained plain vocoder, copy its `checkpoints/` into the new workdir.

    python -m jdrum.train --config configs/hifigan_v1_finetune.py \\
        --config.data.vqvae_run=runs/NAME/vqvae_drums --workdir runs/NAME/vocoder
    python -m jdrum.train --config configs/hifigan_v1_finetune.py:tiny --workdir runs/demo/vocoder

Expect (tiny, synthstems/demo, 2 CPU cores, about 4 minutes after the demo's VQ-VAE): the
held-out `eval/mel_l1` (generator on the reconstructions vs the real audio) ends below
`eval/griffin_lim_mel_l1` (Griffin-Lim on the same reconstructions); both exceed the plain
config's figures by the VQ-VAE's own reconstruction error.
"""

from configs import hifigan_v1


def get_config(arg=None):
    return hifigan_v1.get_config(arg, finetune=True)
