"""A VQ-VAE with its mel statistics: audio ↔ codes ↔ log10 mels, each one jitted call.

    codec = runs.load_codec("runs/demo/vqvae_drums")
    codes_BxS = codec.encode(audio_BxL)         # float audio; `encode_pcm16` for int16 PCM
    mel_BxMxT = codec.decode(codes_BxS)         # de-normalised log10 mel, for a vocoder
    mel_BxMxT = codec.reconstruct_pcm16(pcm)    # through the bottleneck, what a vocoder hears

The one place where "log-mel → per-bin normalisation → VQ-VAE" and its inverse are written:
sampling, tokenizing and the vocoder's fine-tune mels all call it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from jdrum import audio
from jdrum.models import vqvae


def normalised_mel(stats: audio.MelStats, audio_BxL):
    """The VQ-VAE's input: the log-mel of float audio (B, L), normalised per bin."""
    return stats.normalise(audio.log_mel(audio_BxL))


@functools.partial(jax.jit, static_argnums=0)
def _encode(model: vqvae.VQVAE, variables, stats, audio_BxL):
    return model.apply(variables, normalised_mel(stats, audio_BxL), method=model.encode)


@functools.partial(jax.jit, static_argnums=0)
def _decode(model: vqvae.VQVAE, variables, stats, codes_BxS):
    return stats.denormalise(model.apply(variables, codes_BxS, method=model.decode))


@functools.partial(jax.jit, static_argnums=0)
def _reconstruct(model: vqvae.VQVAE, variables, stats, audio_BxL):
    recon = model.apply(variables, normalised_mel(stats, audio_BxL), train=False)[0]
    return stats.denormalise(recon)


@dataclasses.dataclass(frozen=True, eq=False)
class Codec:
    """A trained VQ-VAE (`model`, `variables` {"params", "codebook"}) and its `stats`."""

    model: vqvae.VQVAE
    variables: Any
    stats: audio.MelStats

    def encode(self, audio_BxL) -> jax.Array:
        """(B, S) int32 codes of float audio (B, L); S = L / 1024 for the paper's VQ-VAEs."""
        return _encode(self.model, self.variables, self.stats, audio_BxL)

    def encode_pcm16(self, pcm_BxL) -> jax.Array:
        """`encode` of int16 PCM (B, L)."""
        return self.encode(audio.from_pcm16(np.asarray(pcm_BxL)))

    def decode(self, codes_BxS) -> jax.Array:
        """(B, n_mels, T) de-normalised log10 mels of codes (B, S)."""
        return _decode(self.model, self.variables, self.stats, codes_BxS)

    def reconstruct_pcm16(self, pcm_BxL) -> jax.Array:
        """(B, n_mels, T) de-normalised log10 mels of int16 PCM (B, L) through the bottleneck."""
        return _reconstruct(
            self.model, self.variables, self.stats, audio.from_pcm16(np.asarray(pcm_BxL))
        )
