"""The vocoder train step: the discriminators (MPD + MSD) on the generator's output, then the
generator (HiFi-GAN V1 or Vocos: the same step for both)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jdrum import audio, losses
from jdrum.models import hifigan
from jdrum.trainers.hifigan.segments import CONTEXT_FRAMES
from jdrum.trainers.hifigan.state import SPEC, Models, TrainState


def _inputs(batch):
    """(generator input mel (B, n_mels, frames), real audio (B, segment)) of a batch."""
    excerpt = audio.from_pcm16(batch["excerpt"])
    context = CONTEXT_FRAMES * SPEC.hop_length
    real = excerpt[:, context:-context]
    if "mel" in batch:
        return batch["mel"], real
    return audio.log_mel(excerpt, SPEC)[..., CONTEXT_FRAMES:-CONTEXT_FRAMES], real


def _split(outputs, n: int):
    """Splits discriminator outputs of a [real; fake] batch into (real, fake)."""
    real = jax.tree.map(lambda x: x[:n], outputs)
    fake = jax.tree.map(lambda x: x[n:], outputs)
    return real, fake


def train_step(state: TrainState, batch, models: Models):
    """Discriminator update on the current generator's output, then generator update; a plain
    function that `parallel.jit_step` jits for a mesh.

    Before step `models.discriminator_start` the discriminators are left alone and the
    generator descends the reconstruction losses alone: the mel L1, plus the multi-resolution
    STFT loss when `models.stft_weight` is set (the adversarial and feature-matching metrics
    are 0).
    """
    mel, real = _inputs(batch)
    n = real.shape[0]
    real_mel = losses.loss_mel(real)
    tx = models.optimizer.tx()

    def generate(params):
        return models.generator.apply({"params": params}, mel)

    fake, generator_vjp = jax.vjp(generate, state.generator)

    def reconstruction_fn(fake_BxL):
        """(weighted mel L1 + STFT loss, their metrics)."""
        mel_l1 = jnp.mean(jnp.abs(real_mel - losses.loss_mel(fake_BxL)))
        total, aux = models.mel_weight * mel_l1, {"mel_l1": mel_l1}
        if models.stft_weight:
            aux["stft_loss"] = losses.stft_loss(fake_BxL, real)
            total = total + models.stft_weight * aux["stft_loss"]
        return total, aux

    def adversarial_update(_):
        def d_loss_fn(d_params):
            both = jnp.concatenate([real, jax.lax.stop_gradient(fake)])
            (scores, _), updates = models.discriminator.apply(
                {"params": d_params, hifigan.SPECTRAL: state.spectral},
                both,
                train=True,
                mutable=[hifigan.SPECTRAL],
            )
            real_scores, fake_scores = _split(scores, n)
            return losses.discriminator_loss(real_scores, fake_scores), updates[hifigan.SPECTRAL]

        (d_loss, spectral), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            state.discriminator
        )
        d_updates, d_opt = tx.update(d_grads, state.discriminator_opt, state.discriminator)
        d_params = optax.apply_updates(state.discriminator, d_updates)

        def g_loss_fn(fake_BxL):
            scores, fmaps = models.discriminator.apply(
                {"params": d_params, hifigan.SPECTRAL: spectral},
                jnp.concatenate([real, fake_BxL]),
                train=False,
            )
            _, fake_scores = _split(scores, n)
            real_fmaps, fake_fmaps = _split(fmaps, n)
            adversarial = losses.generator_adversarial_loss(fake_scores)
            matching = losses.feature_matching_loss(real_fmaps, fake_fmaps)
            reconstruction, aux = reconstruction_fn(fake_BxL)
            total = (
                models.adversarial_weight * adversarial
                + models.feature_matching_weight * matching
                + reconstruction
            )
            return total, {"adversarial": adversarial, "feature_matching": matching, **aux}

        (g_loss, aux), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
        aux = {
            **aux,
            "discriminator_loss": d_loss,
            "discriminator_grad_norm": optax.tree_utils.tree_norm(d_grads),
        }
        return g_loss, fake_grad, (d_params, d_opt, spectral), aux

    def mel_only_update(_):
        (g_loss, aux), fake_grad = jax.value_and_grad(reconstruction_fn, has_aux=True)(fake)
        zero = jnp.zeros((), g_loss.dtype)
        aux = {
            **aux,
            "adversarial": zero,
            "feature_matching": zero,
            "discriminator_loss": zero,
            "discriminator_grad_norm": zero,
        }
        discriminator = (state.discriminator, state.discriminator_opt, state.spectral)
        return g_loss, fake_grad, discriminator, aux

    if models.discriminator_start > 0:
        g_loss, fake_grad, discriminator, aux = jax.lax.cond(
            state.step >= models.discriminator_start, adversarial_update, mel_only_update, None
        )
    else:
        g_loss, fake_grad, discriminator, aux = adversarial_update(None)
    d_params, d_opt, spectral = discriminator
    (g_grads,) = generator_vjp(fake_grad)
    g_updates, g_opt = tx.update(g_grads, state.generator_opt, state.generator)
    state = state.replace(
        step=state.step + 1,
        generator=optax.apply_updates(state.generator, g_updates),
        generator_opt=g_opt,
        discriminator=d_params,
        discriminator_opt=d_opt,
        spectral=spectral,
    )
    metrics = {
        "loss": g_loss,
        **aux,
        "generator_grad_norm": optax.tree_utils.tree_norm(g_grads),
    }
    return state, metrics
