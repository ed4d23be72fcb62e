"""GAN vocoder losses (REFERENCE §6.2): LSGAN terms, feature matching and the mel L1.

Discriminator outputs are lists over the sub-discriminators (8 for MPD + MSD) of score maps of
any shape; feature maps are lists (per sub-discriminator) of lists (per layer) of arrays. Every
term is a mean over its array's elements, summed over arrays, as HiFi-GAN computes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jdrum import audio

LOSS_MEL_FLOOR = 1e-5  # natural log of max(mel, 1e-5)
LOSS_MEL_MAGNITUDE_EPS = 1e-9  # sqrt(re² + im² + 1e-9)


def discriminator_loss(real_scores: Sequence[jax.Array], fake_scores: Sequence[jax.Array]):
    """LSGAN discriminator loss Σ_d mean((1 − D_d(real))²) + mean(D_d(fake)²)."""
    return sum(
        jnp.mean(jnp.square(1.0 - r)) + jnp.mean(jnp.square(f))
        for r, f in zip(real_scores, fake_scores, strict=True)
    )


def generator_adversarial_loss(fake_scores: Sequence[jax.Array]) -> jax.Array:
    """LSGAN generator loss Σ_d mean((1 − D_d(fake))²)."""
    return sum(jnp.mean(jnp.square(1.0 - f)) for f in fake_scores)


def feature_matching_loss(
    real_fmaps: Sequence[Sequence[jax.Array]], fake_fmaps: Sequence[Sequence[jax.Array]]
) -> jax.Array:
    """Σ over sub-discriminators and layers of mean |fmap(real) − fmap(fake)|.

    HiFi-GAN multiplies this by 2 (the trainer's `feature_matching` weight); the real features
    are treated as constants.
    """
    total = 0.0
    for real, fake in zip(real_fmaps, fake_fmaps, strict=True):
        for r, f in zip(real, fake, strict=True):
            total = total + jnp.mean(jnp.abs(jax.lax.stop_gradient(r) - f))
    return total


def loss_mel(
    wave_BxL: jax.Array, config: audio.SpectrogramConfig = audio.DEFAULT_SPECTROGRAM
) -> jax.Array:
    """HiFi-GAN's loss mel (B, n_mels, L // hop): ln(max(mel, 1e-5)) of the magnitude with
    1e-9 under the root, on the front end's STFT geometry (a different scale from the log10
    generator input)."""
    mel = audio.mel_magnitude(wave_BxL, config, magnitude_eps=LOSS_MEL_MAGNITUDE_EPS)
    return jnp.log(jnp.maximum(mel, LOSS_MEL_FLOOR))


def mel_l1(
    fake_BxL: jax.Array,
    real_BxL: jax.Array,
    config: audio.SpectrogramConfig = audio.DEFAULT_SPECTROGRAM,
) -> jax.Array:
    """mean |loss_mel(real) − loss_mel(fake)| (HiFi-GAN weights it by 45)."""
    return jnp.mean(jnp.abs(loss_mel(real_BxL, config) - loss_mel(fake_BxL, config)))


STFT_LOSS_SIZES = (512, 1024, 2048)  # `jdrum.sound.STFT_SIZES`: the sound table's resolutions


def stft_loss(
    fake_BxL: jax.Array, real_BxL: jax.Array, sizes: Sequence[int] = STFT_LOSS_SIZES
) -> jax.Array:
    """Multi-resolution STFT loss: the mean over `sizes` (periodic Hann, hop n_fft / 4, the
    front end's framing `audio.stft_magnitude`) of log-magnitude L1 (natural log, magnitudes
    floored at 1e-5, 1e-9 under the root) plus spectral convergence
    ‖|S_real| − |S|‖_F / ‖|S_real|‖_F over the batch: what `jdrum.sound.stft_distance` measures,
    as a differentiable loss (Parallel WaveGAN's auxiliary loss, with the log-magnitude term in
    the sound table's form)."""
    total = 0.0
    for n_fft in sizes:
        config = audio.SpectrogramConfig(n_fft=n_fft, hop_length=n_fft // 4)
        fake = audio.stft_magnitude(fake_BxL, config, LOSS_MEL_MAGNITUDE_EPS)
        real = audio.stft_magnitude(real_BxL, config, LOSS_MEL_MAGNITUDE_EPS)
        log_l1 = jnp.mean(
            jnp.abs(jnp.log(jnp.maximum(real, LOSS_MEL_FLOOR) / jnp.maximum(fake, LOSS_MEL_FLOOR)))
        )
        # Over the whole batch, as Parallel WaveGAN does: per example, a near-silent segment
        # would divide by ~0.
        difference = jnp.sqrt(jnp.sum(jnp.square(real - fake)))
        total = total + log_l1 + difference / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(real))), 1e-7)
    return total / len(sizes)
