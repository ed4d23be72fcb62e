"""Factorised attention of the JukeDrummer LM (jukebox `FactoredAttention`, REFERENCE §3.5).

A sequence of L tokens is cut into L / B blocks of B consecutive tokens (B = 64 in the paper,
16 blocks per 1024-token window); token p = B·b + o sits in block b at offset o. Each layer has
one attention *kind*:

* `BLOCK` (1): attends within its own block (causal: offsets ≤ o);
* `TRANSPOSE` (2): attends to the tokens with the same offset o in every block (causal:
  blocks ≤ b);
* `PREVIOUS` (3): attends to the whole previous block; block 0 sees an all-zero block, so its
  output is 0 before the output projection;
* `CROSS` (6): attends to the encoder's keys/values (encoder–decoder attention, no mask);
* `DENSE` (0): ordinary (causal) attention over the whole sequence, kept for tests.

Teacher-forced attention is computed by reshapes (block: (N·L/B, B, d), transpose: (N·B, L/B, d),
previous: keys shifted by one block), so the cost is O(L·B + L·L/B) instead of O(L²). One
decoding step (query length 1 at position t) reads only the keys it needs from a cache of the
full (N, L, d) keys and values (`attend_step`). `dense_mask` gives the L×L mask that each
kind is equivalent to, for tests.

Scores are q·kᵀ/√d_head; masked scores are set to −1e9 as in the reference (so a row whose keys
are all masked would average them, which never happens here); softmax in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

DENSE, BLOCK, TRANSPOSE, PREVIOUS, CROSS = 0, 1, 2, 3, 6
SELF_KINDS = (DENSE, BLOCK, TRANSPOSE, PREVIOUS)
MASK_VALUE = -1e9


def split_heads(x_NxTxD: jax.Array, heads: int) -> jax.Array:
    """(N, T, D) → (N, heads, T, D / heads); the feature axis is read as (head, d_head)."""
    n, t, d = x_NxTxD.shape
    return x_NxTxD.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3)


def merge_heads(x_NxHxTxK: jax.Array) -> jax.Array:
    n, h, t, k = x_NxHxTxK.shape
    return x_NxHxTxK.transpose(0, 2, 1, 3).reshape(n, t, h * k)


def attention_weights(q, k, mask=None):
    """softmax(q·kᵀ/√d_head) in float32 with the reference's masking; q (..., Tq, K),
    k (..., Tk, K), mask broadcastable to (..., Tq, Tk), True = attend."""
    w = jnp.einsum("...qk,...tk->...qt", q, k, preferred_element_type=jnp.float32)
    w = w / np.sqrt(q.shape[-1])
    if mask is not None:
        w = jnp.where(mask, w, MASK_VALUE)
    return jax.nn.softmax(w, axis=-1)


def _attend(q, k, v, heads, mask=None, dropout=None):
    """Multi-head attention of (M, Tq, D) queries over (M, Tk, D) keys/values → (M, Tq, D)."""
    q, k, v = (split_heads(x, heads) for x in (q, k, v))
    w = attention_weights(q, k, mask)
    if dropout is not None:
        w = dropout(w)
    return merge_heads(jnp.einsum("...qt,...tk->...qk", w.astype(v.dtype), v))


def _tril(n: int) -> np.ndarray:
    return np.tril(np.ones((n, n), bool))


def attend(kind: int, q, k, v, *, heads: int, block_len: int, causal: bool, dropout=None):
    """Teacher-forced attention of one kind.

    Args:
      kind: `DENSE`, `BLOCK`, `TRANSPOSE`, `PREVIOUS` or `CROSS`.
      q: (N, L, D) queries; k, v: (N, L, D) keys/values (for `CROSS`: (N, S, D) of the encoder).
      heads: number of heads (D / heads per head).
      block_len: B; L must be a multiple of it.
      causal: mask future positions (the drum prior) or not (the drumless encoder).
      dropout: optional callable applied to the attention probabilities.

    Returns:
      (N, L, D) attention output before the output projection.
    """
    n, length, d = q.shape
    if kind == CROSS:
        return _attend(q, k, v, heads, dropout=dropout)
    if kind == DENSE:
        return _attend(q, k, v, heads, _tril(length) if causal else None, dropout)
    if length % block_len:
        raise ValueError(f"sequence length {length} is not a multiple of the block {block_len}")
    blocks = length // block_len
    if kind == BLOCK:
        out = _attend(
            *(x.reshape(n * blocks, block_len, d) for x in (q, k, v)),
            heads,
            _tril(block_len) if causal else None,
            dropout,
        )
        return out.reshape(n, length, d)
    if kind == TRANSPOSE:

        def strided(x):  # (N, L, D) -> (N·B, L/B, D): one sequence per offset
            return x.reshape(n, blocks, block_len, d).transpose(0, 2, 1, 3).reshape(-1, blocks, d)

        out = _attend(
            *(strided(x) for x in (q, k, v)), heads, _tril(blocks) if causal else None, dropout
        )
        return out.reshape(n, block_len, blocks, d).transpose(0, 2, 1, 3).reshape(n, length, d)
    if kind == PREVIOUS:

        def previous(x):  # block b gets block b - 1; block 0 gets zeros
            x = x.reshape(n, blocks, block_len, d)
            x = jnp.concatenate([jnp.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
            return x.reshape(n * blocks, block_len, d)

        out = _attend(
            q.reshape(n * blocks, block_len, d), previous(k), previous(v), heads, dropout=dropout
        )
        return out.reshape(n, length, d)
    raise ValueError(f"unknown attention kind {kind}")


def attend_step(
    kind: int, q_Nx1xD, k_cache, v_cache, t, *, heads: int, block_len: int, k_new=None, v_new=None
):
    """One causal decoding step: the query of position `t` over a cache of keys/values.

    Args:
      kind: as in `attend`; self-attention kinds are causal.
      q_Nx1xD: the query of position t.
      k_cache, v_cache: (N, L, D) keys/values; positions < t are filled (for `CROSS`: the
        encoder's, all filled).
      t: int32 scalar (may be traced).
      k_new, v_new: (N, 1, D) key/value of position t itself (self-attention kinds), patched
        into the few cache rows this kind reads, so the caller writes the cache once per step.

    Returns:
      (N, 1, D), equal to row t of `attend(kind, ..., causal=True)` on the full sequence.
    """
    n, length, d = k_cache.shape
    t = jnp.asarray(t, jnp.int32)
    if kind == CROSS:
        return _attend(q_Nx1xD, k_cache, v_cache, heads)
    if kind == DENSE:
        k = jax.lax.dynamic_update_slice(k_cache, k_new, (0, t, 0))
        v = jax.lax.dynamic_update_slice(v_cache, v_new, (0, t, 0))
        mask = (jnp.arange(length) <= t)[None, None, None, :]
        return _attend(q_Nx1xD, k, v, heads, mask)
    blocks = length // block_len
    block, offset = t // block_len, t % block_len
    if kind == BLOCK:

        def own_block(cache, new):
            x = jax.lax.dynamic_slice(cache, (0, block * block_len, 0), (n, block_len, d))
            return jax.lax.dynamic_update_slice(x, new, (0, offset, 0))

        mask = (jnp.arange(block_len) <= offset)[None, None, None, :]
        return _attend(q_Nx1xD, own_block(k_cache, k_new), own_block(v_cache, v_new), heads, mask)
    if kind == TRANSPOSE:

        def column(cache, new):  # (N, L, D) -> (N, L/B, D): the tokens at this offset
            x = cache.reshape(n, blocks, block_len, d)
            x = jax.lax.dynamic_slice(x, (0, 0, offset, 0), (n, blocks, 1, d))[:, :, 0]
            return jax.lax.dynamic_update_slice(x, new, (0, block, 0))

        mask = (jnp.arange(blocks) <= block)[None, None, None, :]
        return _attend(q_Nx1xD, column(k_cache, k_new), column(v_cache, v_new), heads, mask)
    if kind == PREVIOUS:
        start = (0, jnp.maximum(block - 1, 0) * block_len, 0)
        keep = (block > 0).astype(k_cache.dtype)
        k = jax.lax.dynamic_slice(k_cache, start, (n, block_len, d)) * keep
        v = jax.lax.dynamic_slice(v_cache, start, (n, block_len, d)) * keep
        return _attend(q_Nx1xD, k, v, heads)
    raise ValueError(f"unknown attention kind {kind}")


def dense_mask(kind: int, length: int, block_len: int, causal: bool = True) -> np.ndarray:
    """The (L, L) boolean mask under which dense attention equals `attend(kind, ...)`
    (True = query i may attend key j). `PREVIOUS` rows of block 0 are all False (their
    output is 0, which no mask of real keys reproduces)."""
    i, j = np.meshgrid(np.arange(length), np.arange(length), indexing="ij")
    block_i, block_j = i // block_len, j // block_len
    before = j <= i if causal else np.ones_like(i, bool)
    if kind == DENSE:
        return before
    if kind == BLOCK:
        return (block_i == block_j) & before
    if kind == TRANSPOSE:
        return (i % block_len == j % block_len) & before
    if kind == PREVIOUS:
        return block_j == block_i - 1
    raise ValueError(f"no dense mask for attention kind {kind}")
