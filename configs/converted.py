"""The run configs that `python -m jdrum.convert` writes the authors' weights with: the
paper-size configs of configs/vqvae.py, lm.py and hifigan_v1.py, whose model fields the
converted files then fill in (`jdrum.convert.official.BaseConfigs`)."""

from __future__ import annotations

from configs import hifigan_v1, lm, vqvae
from jdrum.convert import official

BASE_CONFIGS = official.BaseConfigs(
    vqvae=lambda stem, codebook_size: vqvae.get_config(stem, codebook_size, None),
    lm=lambda variant: lm.get_config(variant, None),
    vocoder=hifigan_v1.get_config,
)
