"""EMA vector-quantisation bottleneck (jukebox `BottleneckBlock`, REFERENCE §2.3).

The codebook is not trained by gradients. It and its EMA accumulators live in their own linen
collection, `"codebook"`, never in `"params"`, so the optimiser never sees them:

    codebook/<module path>/k            (K, D) float32  code vectors used for quantisation
                          /k_sum        (K, D) float32  EMA of the per-code sums of assigned vectors
                          /k_elem       (K,)   float32  EMA of the per-code assignment counts
                          /initialised  ()     bool     set by the lazy init on the first train step

Differences from the reference, on purpose:

* The codebook is updated only when `train=True` (the reference also updated it during
  validation passes, REFERENCE §10.10).
* Randomness (lazy init, dead-code restart) comes from the `"codebook"` rng stream; the pure
  functions `lazy_init` and `ema_update` take the permutation as an argument so that a recorded
  reference permutation reproduces the reference update exactly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

COLLECTION = "codebook"  # the linen collection of the codebook state (and the rng stream name)
INIT_NOISE = 0.01  # std of the tiling noise is INIT_NOISE / √D


class Codebook(NamedTuple):
    """The EMA codebook state (the `"codebook"` collection without the `initialised` flag)."""

    k: jax.Array  # (K, D)
    k_sum: jax.Array  # (K, D)
    k_elem: jax.Array  # (K,)


def nearest_code(x_NxD: jax.Array, k_KxD: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Index of the nearest code by ‖x‖² − 2x·k + ‖k‖² (the reference's float32 formula).

    Returns:
      codes_N (int32) and the minimal distances distance_N.
    """
    x2_Nx1 = jnp.sum(x_NxD**2, axis=-1, keepdims=True)
    k2_1xK = jnp.sum(k_KxD**2, axis=-1)[None, :]
    xk_NxK = jnp.matmul(x_NxD, k_KxD.T, precision=jax.lax.Precision.HIGHEST)
    distance_NxK = x2_Nx1 - 2 * xk_NxK + k2_1xK
    codes_N = jnp.argmin(distance_NxK, axis=-1).astype(jnp.int32)
    distance_N = jnp.take_along_axis(distance_NxK, codes_N[:, None], axis=-1)[:, 0]
    return codes_N, distance_N


def tiled_rows(num_rows: int, codebook_size: int) -> int:
    """Number of candidate rows `random_rows` draws from for a batch of `num_rows` vectors."""
    if num_rows >= codebook_size:
        return num_rows
    return num_rows * math.ceil(codebook_size / num_rows)


def random_rows(
    x_NxD: jax.Array, codebook_size: int, key: jax.Array, perm: jax.Array | None = None
) -> jax.Array:
    """`codebook_size` rows of x in random order (jukebox `_tile` + `randperm`).

    With fewer rows than codes, x is first tiled and every copy gets N(0, (0.01/√D)²) noise.

    Args:
      x_NxD: batch of encoder vectors.
      codebook_size: K, the number of rows returned.
      key: randomness for the noise and, when `perm` is None, the permutation.
      perm: optional permutation of `tiled_rows(N, K)` rows (a recorded reference permutation).

    Returns:
      rows_KxD: the first K rows of the permuted (tiled) batch.
    """
    num_rows, width = x_NxD.shape
    noise_key, perm_key = jax.random.split(key)
    y_MxD = x_NxD
    if num_rows < codebook_size:
        repeats = tiled_rows(num_rows, codebook_size) // num_rows
        y_MxD = jnp.tile(x_NxD, (repeats, 1))
        noise_MxD = jax.random.normal(noise_key, y_MxD.shape, y_MxD.dtype)
        y_MxD = y_MxD + noise_MxD * (INIT_NOISE / math.sqrt(width))
    if perm is None:
        perm = jax.random.permutation(perm_key, y_MxD.shape[0])
    elif perm.shape != (y_MxD.shape[0],):
        raise ValueError(f"perm has shape {perm.shape}, expected ({y_MxD.shape[0]},)")
    return y_MxD[perm[:codebook_size]]


def lazy_init(
    x_NxD: jax.Array, codebook_size: int, key: jax.Array, perm: jax.Array | None = None
) -> Codebook:
    """Codebook from a batch (jukebox `init_k`): k = random rows, k_sum = k, k_elem = 1."""
    k_KxD = random_rows(x_NxD, codebook_size, key, perm)
    return Codebook(k=k_KxD, k_sum=k_KxD, k_elem=jnp.ones((codebook_size,), k_KxD.dtype))


def ema_update(
    state: Codebook,
    x_NxD: jax.Array,
    codes_N: jax.Array,
    key: jax.Array,
    perm: jax.Array | None = None,
    *,
    mu: float = 0.99,
    threshold: float = 1.0,
) -> tuple[Codebook, dict[str, jax.Array]]:
    """One EMA step with dead-code restart (jukebox `update_k`).

    k_sum ← μ·k_sum + (1−μ)·Σ x, k_elem ← μ·k_elem + (1−μ)·n over the vectors assigned to each
    code; codes with k_elem ≥ threshold become k_sum/k_elem, the others are replaced by random
    rows of the batch (`random_rows`) while their accumulators keep decaying.

    Args:
      state: the codebook before the step (the one that produced `codes_N`).
      x_NxD: the encoder vectors of the batch (no gradient flows through the update).
      codes_N: their code indices under `state.k`.
      key: randomness for the restart rows (`random_rows`).
      perm: optional restart permutation (see `random_rows`).
      mu: EMA decay.
      threshold: minimal k_elem for a code to count as used.

    Returns:
      The new state and metrics: `entropy` of the batch's code histogram (nats), `used_curr`
      (codes hit in this batch), `usage` (codes with k_elem ≥ threshold after the step),
      `restarted` (codes replaced by batch rows, K − usage) and `dk` (RMS change of k).
    """
    x_NxD = jax.lax.stop_gradient(x_NxD)
    codebook_size = state.k.shape[0]
    onehot_NxK = jax.nn.one_hot(codes_N, codebook_size, dtype=x_NxD.dtype)
    batch_sum_KxD = jnp.matmul(onehot_NxK.T, x_NxD, precision=jax.lax.Precision.HIGHEST)
    batch_elem_K = jnp.sum(onehot_NxK, axis=0)
    rows_KxD = random_rows(x_NxD, codebook_size, key, perm)

    # Float32 constants as PyTorch uses them (Python scalars cast to the tensor dtype): a code hit
    # once ends with k_elem = 0.99 + 0.01 = exactly 1.0 and counts as used.
    decay = jnp.asarray(mu, x_NxD.dtype)
    rate = jnp.asarray(1.0 - mu, x_NxD.dtype)
    k_sum_KxD = decay * state.k_sum + rate * batch_sum_KxD
    k_elem_K = decay * state.k_elem + rate * batch_elem_K
    used_K = k_elem_K >= threshold
    k_KxD = jnp.where(used_K[:, None], k_sum_KxD / k_elem_K[:, None], rows_KxD)

    usage = jnp.sum(used_K).astype(jnp.int32)
    metrics = {
        **_histogram_metrics(batch_elem_K, threshold),
        "usage": usage,
        "restarted": codebook_size - usage,
        "dk": jnp.sqrt(jnp.sum((k_KxD - state.k) ** 2) / state.k.size),
    }
    return Codebook(k=k_KxD, k_sum=k_sum_KxD, k_elem=k_elem_K), metrics


def _code_counts(codes_N: jax.Array, codebook_size: int, dtype=jnp.float32) -> jax.Array:
    """Assignments per code (K,), as a one-hot sum (deterministic on every backend)."""
    return jnp.sum(jax.nn.one_hot(codes_N, codebook_size, dtype=dtype), axis=0)


def _histogram_metrics(count_K: jax.Array, threshold: float) -> dict[str, jax.Array]:
    prob_K = count_K / jnp.sum(count_K)
    return {
        "entropy": -jnp.sum(prob_K * jnp.log(prob_K + 1e-8)),
        "used_curr": jnp.sum(count_K >= threshold).astype(jnp.int32),
    }


class EMAQuantizer(nn.Module):
    """EMA codebook bottleneck over rows of (N, D) vectors.

    Call with `train=True` inside `apply(..., mutable=["codebook"], rngs={"codebook": key})`:
    on the first such call the codebook is initialised from the batch; every such call then
    quantises with the current codebook and writes the EMA-updated one. `train=False` (and
    `init`) never changes the collection and needs no rng.
    """

    codebook_size: int
    width: int = 64
    mu: float = 0.99
    threshold: float = 1.0

    def setup(self):
        shape = (self.codebook_size, self.width)
        self.k = self.variable(COLLECTION, "k", jnp.zeros, shape, jnp.float32)
        self.k_sum = self.variable(COLLECTION, "k_sum", jnp.zeros, shape, jnp.float32)
        self.k_elem = self.variable(
            COLLECTION, "k_elem", jnp.zeros, (self.codebook_size,), jnp.float32
        )
        self.initialised = self.variable(COLLECTION, "initialised", lambda: jnp.array(False))

    def quantize(self, x_NxD: jax.Array) -> jax.Array:
        """Code indices (N,) int32 of the nearest codes."""
        return nearest_code(x_NxD, self.k.value)[0]

    def lookup(self, codes: jax.Array) -> jax.Array:
        """Code vectors of integer codes of any shape: (...,) -> (..., D)."""
        return jnp.take(self.k.value, codes, axis=0)

    def __call__(
        self, x_NxD: jax.Array, train: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """Quantises a batch with a straight-through gradient.

        Args:
          x_NxD: encoder vectors (rows of the flattened NTC latents).
          train: update the codebook (lazy init + EMA step); needs the collection mutable.

        Returns:
          x_st_NxD: x + sg(x_q − x), the decoder input.
          codes_N: int32 code indices.
          commit_loss: mean((sg(x_q) − x)²).
          metrics: `fit` (mean minimal distance), `prenorm` (RMS of x − mean(x)), `entropy`,
            `perplexity`, `used_curr`, `usage`, `restarted`, `dk` (see `ema_update`; without an
            update `usage` counts codes whose k_elem ≥ threshold and `restarted` = `dk` = 0).
        """
        if x_NxD.shape[-1] != self.width:
            raise ValueError(f"expected vectors of width {self.width}, got {x_NxD.shape}")
        x_sg_NxD = jax.lax.stop_gradient(x_NxD)
        state = Codebook(self.k.value, self.k_sum.value, self.k_elem.value)
        update = train and not self.is_initializing()
        if update:
            init_key, update_key = jax.random.split(self.make_rng(COLLECTION))
            state = jax.lax.cond(
                self.initialised.value,
                lambda: state,
                lambda: lazy_init(x_sg_NxD, self.codebook_size, init_key),
            )

        codes_N, distance_N = nearest_code(x_sg_NxD, state.k)
        x_q_NxD = jnp.take(state.k, codes_N, axis=0)
        commit_loss = jnp.mean((jax.lax.stop_gradient(x_q_NxD) - x_NxD) ** 2)
        x_st_NxD = x_NxD + jax.lax.stop_gradient(x_q_NxD - x_NxD)

        if update:
            new_state, metrics = ema_update(
                state, x_sg_NxD, codes_N, update_key, mu=self.mu, threshold=self.threshold
            )
            self.k.value, self.k_sum.value, self.k_elem.value = new_state
            self.initialised.value = jnp.array(True)
        else:
            usage = jnp.sum(state.k_elem >= self.threshold).astype(jnp.int32)
            metrics = {
                **_histogram_metrics(_code_counts(codes_N, self.codebook_size), self.threshold),
                "usage": usage,
                "restarted": jnp.zeros((), jnp.int32),
                "dk": jnp.zeros((), jnp.float32),
            }
        metrics["perplexity"] = jnp.exp(metrics["entropy"])
        metrics["fit"] = jnp.mean(distance_N)
        metrics["prenorm"] = jnp.sqrt(jnp.mean((x_sg_NxD - jnp.mean(x_sg_NxD)) ** 2))
        return x_st_NxD, codes_N, commit_loss, metrics
