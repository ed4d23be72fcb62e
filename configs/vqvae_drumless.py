"""Drumless mel VQ-VAE, 1024 codes (the reference forces 1024 for every drumless model).

    python -m jdrum.train --config configs/vqvae_drumless.py --workdir runs/NAME/vqvae_drumless
    python -m jdrum.train --config configs/vqvae_drumless.py:tiny \\
        --workdir runs/tiny/vqvae_drumless

Expect (tiny): the reconstruction MSE falls steadily; with 1024 codes and a small dataset only
part of the codebook is in use.

Timbre augmentation: `--config.data.augment=0.5` (the intended value; default 0, off) passes half
of the train clips through a random EQ, compression, reverb and gain (`jdrum.augment`), so that
the codes also cover drumless timbres the dataset does not have.
"""

from configs import vqvae


def get_config(arg=None):
    return vqvae.get_config("drumless", 1024, arg)
