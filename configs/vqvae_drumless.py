"""Drumless mel VQ-VAE, 1024 codes (the reference forces 1024 for every drumless model).

    python -m jdrum.train --config configs/vqvae_drumless.py --workdir runs/NAME/vqvae_drumless
    python -m jdrum.train --config configs/vqvae_drumless.py:tiny \\
        --workdir runs/tiny/vqvae_drumless

Expect (tiny): the reconstruction MSE falls steadily; with 1024 codes and a small dataset only
part of the codebook is in use.
"""

from configs import vqvae


def get_config(arg=None):
    return vqvae.get_config("drumless", 1024, arg)
