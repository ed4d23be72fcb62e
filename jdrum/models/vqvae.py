"""Mel VQ-VAE (REFERENCE §2): multi-scale "Sampler" encoder/decoder around an EMA bottleneck.

Public methods take and return mels as (B, n_mels, T) — the NCT layout of `jdrum.audio.log_mel`
and of the reference; everything inside runs NTC. With the paper's vq1 ratios a (B, 80, 4096)
normalised mel becomes (B, 1024) tokens and back.

Variables of `VQVAE` (what `init` returns and `apply` takes):

    params/encoder, params/decoder           Sampler trees (below); 9,950,640 values at width 512
    codebook/quantizer/{k, k_sum, k_elem, initialised}   the EMA codebook (`quantizer` module)

Sampler tree (S = number of scale factors; Conv1d = {kernel (k, in/groups, out), bias (out,)},
GroupNorm = {scale, bias}):

    block0, blocks_{0..S-1}   BodyGBlock: conv_in (Conv1d), norm (GroupNorm),
                              rc/{conv (grouped Conv1d), norm (GroupNorm)}, conv_out (Conv1d)
    head0, heads_{0..S-1}     Conv1d width -> out_dim

Mixed precision: `dtype=jnp.bfloat16` runs the convolutions in bfloat16 (their float32
parameters are cast on use) while GroupNorm statistics and outputs, the quantizer, the
reconstruction and the losses stay float32; the default float32 is the reference computation.

A training step calls

    (recon, aux), updates = model.apply(
        variables, mel, train=True, mutable=["codebook"], rngs={"codebook": key})

and carries `updates["codebook"]` to the next step; `aux["loss"]` is what to differentiate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jdrum.models import layers, quantizer


def _conv(dtype, *args, **kwargs):
    """A `layers.Conv` computing in `dtype` (the compute dtype; parameters stay float32)."""
    return layers.Conv(*args, dtype=dtype, **kwargs)


class RCBlock(nn.Module):
    """Grouped conv → GroupNorm → LeakyReLU branch; returns 2·x + branch.

    The reference block adds its input twice (once as the residual copy and once as the running
    tensor, REFERENCE §10.15). Kept so that the official checkpoints compute what they were
    trained to compute.
    """

    groups: int = 4
    precision: jax.lax.PrecisionLike = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxTxC: jax.Array) -> jax.Array:
        width = x_BxTxC.shape[-1]
        branch = _conv(
            self.dtype, width, 3, groups=self.groups, precision=self.precision, name="conv"
        )
        branch_BxTxC = layers.leaky_relu(
            layers.GroupNorm(num_groups=self.groups, name="norm")(branch(x_BxTxC))
        )
        return 2.0 * x_BxTxC + branch_BxTxC


class BodyGBlock(nn.Module):
    """Conv(in→width) → GroupNorm → LeakyReLU → RCBlock → Conv(width→out), no final activation."""

    out_dim: int
    width: int = 512
    groups: int = 4
    precision: jax.lax.PrecisionLike = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        conv = lambda features, name: _conv(
            self.dtype, features, 3, precision=self.precision, name=name
        )
        h_BxTxW = conv(self.width, "conv_in")(x_BxTxI)
        h_BxTxW = layers.leaky_relu(layers.GroupNorm(num_groups=self.groups, name="norm")(h_BxTxW))
        h_BxTxW = RCBlock(self.groups, self.precision, self.dtype, name="rc")(h_BxTxW)
        return conv(self.out_dim, "conv_out")(h_BxTxW)


class Sampler(nn.Module):
    """Multi-scale body/head stack (REFERENCE §2.1) used as both encoder and decoder.

    body = block0(x), head = head0(body); then per scale factor s: resample body and head by s
    (nearest), body += blocks_i(body), head += heads_i(body). Returns head.

    When `"intermediates"` is mutable, the submodule outputs the reference's forward hooks see
    (before they are added to the resampled body/head) are sown as `block0_out`, `head0_out`,
    `blocks_i_out` and `heads_i_out`.
    """

    out_dim: int
    scale_factors: Sequence[float]
    width: int = 512
    groups: int = 4
    precision: jax.lax.PrecisionLike = None
    dtype: Any = jnp.float32  # compute dtype; the output is in this dtype

    @nn.compact
    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        def body_block(name):
            return BodyGBlock(
                self.width, self.width, self.groups, self.precision, self.dtype, name=name
            )

        def head_conv(name):
            return _conv(self.dtype, self.out_dim, 3, precision=self.precision, name=name)

        body_BxTxW = body_block("block0")(x_BxTxI)
        head_BxTxO = head_conv("head0")(body_BxTxW)
        self.sow("intermediates", "block0_out", body_BxTxW)
        self.sow("intermediates", "head0_out", head_BxTxO)
        for i, scale in enumerate(self.scale_factors):
            body_BxTxW = layers.resample_nearest(body_BxTxW, scale)
            head_BxTxO = layers.resample_nearest(head_BxTxO, scale)
            block_BxTxW = body_block(f"blocks_{i}")(body_BxTxW)
            self.sow("intermediates", f"blocks_{i}_out", block_BxTxW)
            body_BxTxW = body_BxTxW + block_BxTxW
            block_head_BxTxO = head_conv(f"heads_{i}")(body_BxTxW)
            self.sow("intermediates", f"heads_{i}_out", block_head_BxTxO)
            head_BxTxO = head_BxTxO + block_head_BxTxO
        return head_BxTxO


class Encoder(Sampler):
    """Sampler(n_mels → latent, ×0.5, ×0.5): NTC mel (B, T, 80) → latents (B, T/4, 64)."""

    out_dim: int = 64
    scale_factors: Sequence[float] = (0.5, 0.5)


class Decoder(Sampler):
    """Sampler(latent → n_mels, ×2, ×2): NTC latents (B, T, 64) → mel (B, 4T, 80)."""

    out_dim: int = 80
    scale_factors: Sequence[float] = (2, 2)


class VQVAE(nn.Module):
    """Mel VQ-VAE with an EMA codebook.

    Attributes:
      codebook_size: K (drums 32, drumless 1024 in the paper).
      width: the Sampler's hidden width (512 in the paper).
      latent: width of the code vectors.
      n_mels: mel bins.
      down: encoder scale factors (their product is the token rate / mel frame rate).
      up: decoder scale factors (their product must undo `down`).
      commit_beta: weight of the commitment loss in `loss`.
      mu: EMA decay of the codebook.
      threshold: minimal EMA count for a code to be kept (else it is restarted).
      precision: conv precision (None: the backend default; HIGHEST for reference parity on GPU).
      dtype: compute dtype of the convolutions (float32, or bfloat16 for mixed precision);
        parameters, norms, the codebook, outputs and losses are float32 either way.
    """

    codebook_size: int
    width: int = 512
    latent: int = 64
    n_mels: int = 80
    down: Sequence[float] = (0.5, 0.5)
    up: Sequence[float] = (2, 2)
    commit_beta: float = 0.02
    mu: float = 0.99
    threshold: float = 1.0
    precision: jax.lax.PrecisionLike = None
    dtype: Any = jnp.float32

    def setup(self):
        self.encoder = Encoder(
            self.latent, self.down, self.width, precision=self.precision, dtype=self.dtype
        )
        self.decoder = Decoder(
            self.n_mels, self.up, self.width, precision=self.precision, dtype=self.dtype
        )
        self.quantizer = quantizer.EMAQuantizer(
            self.codebook_size, self.latent, self.mu, self.threshold
        )

    def latents(self, mel_BxMxT: jax.Array) -> jax.Array:
        """Encoder output before quantisation, NCT: (B, n_mels, T) → (B, latent, T')."""
        return self._encode(mel_BxMxT).transpose(0, 2, 1)

    def _encode(self, mel_BxMxT: jax.Array) -> jax.Array:
        if mel_BxMxT.ndim != 3 or mel_BxMxT.shape[1] != self.n_mels:
            raise ValueError(f"expected mels (B, {self.n_mels}, T), got {mel_BxMxT.shape}")
        return self.encoder(mel_BxMxT.transpose(0, 2, 1)).astype(jnp.float32)

    def encode(self, mel_BxMxT: jax.Array) -> jax.Array:
        """Tokens (B, T') int32 of normalised mels (B, n_mels, T); T' = T/4 for vq1."""
        z_BxLxD = self._encode(mel_BxMxT)
        batch, length, width = z_BxLxD.shape
        codes_N = self.quantizer.quantize(z_BxLxD.reshape(batch * length, width))
        return codes_N.reshape(batch, length)

    def decode(self, tokens_BxL: jax.Array) -> jax.Array:
        """Normalised mels (B, n_mels, T) of tokens (B, T') (the decoder on pure code vectors)."""
        mel_BxTxM = self.decoder(self.quantizer.lookup(tokens_BxL)).astype(jnp.float32)
        return mel_BxTxM.transpose(0, 2, 1)

    def __call__(self, mel_BxMxT: jax.Array, train: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Reconstructs normalised mels through the straight-through bottleneck.

        Args:
          mel_BxMxT: normalised log-mels (B, n_mels, T).
          train: update the EMA codebook (needs `mutable=["codebook"]` and a `"codebook"` rng).

        Returns:
          recon_BxMxT: the reconstruction, and aux: `loss` (recon_loss + commit_beta ·
          commit_loss), `recon_loss` (MSE), `commit_loss`, `tokens` (B, T') and the codebook
          metrics of `quantizer.EMAQuantizer` (`fit`, `prenorm`, `entropy`, `perplexity`,
          `used_curr`, `usage`, `restarted`, `dk`).
        """
        z_BxLxD = self._encode(mel_BxMxT)
        batch, length, width = z_BxLxD.shape
        z_st_NxD, codes_N, commit_loss, metrics = self.quantizer(
            z_BxLxD.reshape(batch * length, width), train
        )
        recon_BxTxM = self.decoder(z_st_NxD.reshape(batch, length, width)).astype(jnp.float32)
        recon_BxMxT = recon_BxTxM.transpose(0, 2, 1)
        if recon_BxMxT.shape != mel_BxMxT.shape:
            raise ValueError(
                f"reconstruction {recon_BxMxT.shape} != input {mel_BxMxT.shape}: the frame count"
                f" must be divisible by the encoder's downsampling ({self.down})"
            )
        recon_loss = jnp.mean((recon_BxMxT - mel_BxMxT) ** 2)
        aux = {
            "loss": recon_loss + self.commit_beta * commit_loss,
            "recon_loss": recon_loss,
            "commit_loss": commit_loss,
            "tokens": codes_N.reshape(batch, length),
            **metrics,
        }
        return recon_BxMxT, aux


@dataclasses.dataclass(frozen=True)
class VQVAEConfig:
    """The sizes of a `VQVAE` as a run's `config.model` gives them (`frozen.from_mapping`)."""

    codebook_size: int
    width: int = 512
    latent: int = 64
    down: tuple[float, ...] = (0.5, 0.5)
    up: tuple[float, ...] = (2, 2)
    commit_beta: float = 0.02
    dtype: str = "float32"  # compute dtype; runs before the field existed are float32

    def make(self) -> VQVAE:
        return VQVAE(**{**dataclasses.asdict(self), "dtype": jnp.dtype(self.dtype)})
