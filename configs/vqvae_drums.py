"""Drum mel VQ-VAE, 32 codes (vq1 of the reference).

    python -m jdrum.train --config configs/vqvae_drums.py --workdir runs/NAME/vqvae_drums
    python -m jdrum.train --config configs/vqvae_drums.py:tiny --workdir runs/tiny/vqvae_drums

Expect (tiny, synthstems/demo on CPU, a few minutes): the normalised-mel reconstruction MSE
falls below 0.3 and at least 16 of the 32 codes are in use (`eval/recon_loss`,
`eval/codes_used`).
"""

from configs import vqvae


def get_config(arg=None):
    return vqvae.get_config("drums", 32, arg)
