"""Sampling drum codes from a `DrumLM`: one jitted program per window, songs of any length.

* `sample_window` is one compiled program for one window of `n_ctx` tokens and a batch of
  takes: the drumless encoder runs once, the teacher-forced prior fills the key/value cache
  with the primed tokens (`prefill`), then a `lax` loop samples the remaining tokens one at a
  time (temperature, top-k, top-p), with explicit PRNG keys.
* `generate` covers a song of any number of tokens: windows overlap by `overlap` tokens and
  each window after the first is primed with the drum tokens already generated in its overlap
  (a continuation), while the encoder sees the matching drumless window; the last window is
  aligned to the song's end. Songs shorter than one window are padded (drumless code 0, zero
  beat conditions) and the output is trimmed. Consecutive windows therefore agree on their
  overlap and the joined drum codes have no seam.
* Priming ("continue my groove"): `generate(..., fixed=codes)` fixes token positions to given
  codes (`FREE` elsewhere). Inside the loop a fixed position's sampled token is replaced by its
  code before it is written, so the cache and every later token see it; a window's leading
  fixed tokens are prefilled with the overlap, and a window with nothing free is not run. The
  PRNG keys are drawn as without `fixed`, so tokens before the first fixed position are those
  of unprimed sampling, and `fixed=None` (or all `FREE`) samples exactly as before.

* Classifier-free guidance (`SamplingConfig.guidance` = W ≠ 1): the window program runs a
  doubled batch, the takes with their conditions and the same takes with every condition the
  LM has dropped (beat and drumless, `DrumLM` keep masks), and samples from
  uncond + W · (cond − uncond) of the two step logits (before temperature and filtering); both
  halves are fed the sampled token. W = 1 is the conditional model itself and runs the plain
  program (byte-identical to sampling without guidance); 0 < W < 1 moves towards the
  unconditional model, W > 1 away from it. It needs an LM trained with dropped conditions
  (`config.train.drop_*`, checked by `jdrum.inference.pipeline.Pipeline`).

Defaults are the reference's inference settings (REFERENCE §5.1): temperature 0.96, top-p 0.8,
no top-k, no guidance.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jdrum.models import transformer

FREE = -1  # a position of `generate(fixed=...)` that is sampled


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.96  # logits are divided by it (> 0)
    top_k: int = 0  # keep the k most likely tokens; 0 keeps all
    top_p: float = 0.8  # nucleus: keep the most likely tokens up to probability p; 1 keeps all
    overlap: int | None = None  # tokens shared by consecutive windows; None: n_ctx // 2
    guidance: float = 1.0  # classifier-free guidance weight W >= 0; 1: none

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 <= self.guidance < float("inf"):
            raise ValueError(f"guidance must be a number >= 0 (1: none), got {self.guidance}")
        if self.top_k < 0 or not 0 <= self.top_p <= 1:
            raise ValueError(f"need top_k >= 0 and 0 <= top_p <= 1, got {self.top_k}, {self.top_p}")


def filter_logits(logits, top_k: int = 0, top_p=1.0):
    """jukebox `filter_logits` on the last axis; removed entries become −inf.

    top-k keeps the k largest logits (0: all). top-p sorts the logits in descending order and
    removes every token whose inclusive cumulative probability exceeds p, except that the
    first token crossing p and the most likely token are always kept (p ≤ 0 or ≥ 1: no
    filtering, as in the reference, which only filters when p > 0).
    """
    logits = jnp.asarray(logits, jnp.float32)
    if top_k:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    order = jnp.argsort(-logits, axis=-1, stable=True)
    sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
    cumulative = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
    remove_sorted = cumulative > top_p
    remove_sorted = jnp.concatenate(
        [jnp.zeros_like(remove_sorted[..., :1]), remove_sorted[..., :-1]], axis=-1
    )
    remove = jnp.take_along_axis(remove_sorted, jnp.argsort(order, axis=-1), axis=-1)
    active = (top_p > 0) & (top_p < 1)
    return jnp.where(active & remove, -jnp.inf, logits)


@flax.struct.dataclass
class _LoopState:
    tokens: jax.Array  # (N, L) int32: primed tokens, then the sampled ones
    logits: jax.Array  # (N, L, V) float32: the step logits before temperature and filtering
    cache: dict
    key: jax.Array


@functools.partial(jax.jit, static_argnames=("model", "top_k"))
def sample_window(
    model: transformer.DrumLM,
    variables,
    primed_NxL,
    prime_len,
    drumless_NxL=None,
    beat=None,
    fixed_NxL=None,
    *,
    key,
    temperature=0.96,
    top_k: int = 0,
    top_p=0.8,
    guidance=None,
):
    """Samples positions `prime_len` … L − 1 of one window.

    Args:
      model: the LM (static).
      variables: its variables.
      primed_NxL: int (N, L); positions < prime_len are kept, the rest is overwritten.
      prime_len: int32 scalar, 0 ≤ prime_len ≤ L (traced: one program for every value).
      drumless_NxL: drumless codes of the window (seq2seq models).
      beat: beat conditions of the window (N, L, 50) or (N, L) (beat-conditioned models).
      fixed_NxL: int (N, L) or None: where ≥ 0, the token written at that position (≥
        prime_len) is this code instead of the sampled one (`FREE`: sampled).
      key: PRNG key.
      temperature, top_p: traced scalars; top_k: static.
      guidance: None (no guidance) or the traced weight W of classifier-free guidance (module
        docstring; a doubled batch).

    Returns:
      (tokens (N, L) int32, step logits (N, L, V) float32 (with guidance, the mixture); rows
      < prime_len are 0).
    """
    num, length = primed_NxL.shape
    primed_NxL = jnp.asarray(primed_NxL, jnp.int32)
    if fixed_NxL is not None:
        fixed_NxL = jnp.asarray(fixed_NxL, jnp.int32)
    keep = None
    inputs = (primed_NxL, drumless_NxL, beat)
    if guidance is not None:  # rows N .. 2N − 1: the same takes without their conditions
        keep = jnp.concatenate([jnp.ones(num), jnp.zeros(num)])
        inputs = tuple(None if x is None else jnp.concatenate([x, x]) for x in inputs)
    logits_tf, cache = model.apply(
        variables, *inputs, keep_beat=keep, keep_drumless=keep, method=transformer.DrumLM.prefill
    )
    cond = model.apply(variables, inputs[2], length, keep, method=transformer.DrumLM.condition)
    shifted = None if cond is None else transformer.shift_right(cond)

    def body(t, state: _LoopState) -> _LoopState:
        prev = jax.lax.dynamic_index_in_dim(state.tokens, jnp.maximum(t - 1, 0), 1, False)
        if guidance is not None:
            prev = jnp.concatenate([prev, prev])
        cond_t = None if shifted is None else jax.lax.dynamic_index_in_dim(shifted, t, 1, False)
        logits, cache = model.apply(
            variables, prev, t, cond_t, state.cache, method=transformer.DrumLM.step
        )
        if guidance is not None:
            conditional, unconditional = logits[:num], logits[num:]
            logits = unconditional + guidance * (conditional - unconditional)
        key, sub = jax.random.split(state.key)
        filtered = filter_logits(logits / temperature, top_k, top_p)
        token = jax.random.categorical(sub, filtered, axis=-1).astype(jnp.int32)
        if fixed_NxL is not None:
            fixed_t = jax.lax.dynamic_index_in_dim(fixed_NxL, t, 1, False)
            token = jnp.where(fixed_t >= 0, fixed_t, token)
        return _LoopState(
            tokens=jax.lax.dynamic_update_index_in_dim(state.tokens, token, t, 1),
            logits=jax.lax.dynamic_update_index_in_dim(state.logits, logits, t, 1),
            cache=cache,
            key=key,
        )

    state = _LoopState(
        tokens=primed_NxL,
        logits=jnp.zeros_like(logits_tf[:num]),
        cache=cache,
        key=key,
    )
    state = jax.lax.fori_loop(jnp.asarray(prime_len, jnp.int32), length, body, state)
    return state.tokens, state.logits


def window_plan(num_tokens: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(start, primed tokens) of each window covering `num_tokens` tokens.

    Windows advance by `window − overlap`; the last one ends at the song's end (so it may share
    more than `overlap` tokens with the one before). A song shorter than a window gets one
    (padded) window.
    """
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, {window}), got {overlap}")
    if num_tokens <= 0:
        raise ValueError(f"nothing to generate: {num_tokens} tokens")
    plan = [(0, 0)]
    while plan[-1][0] + window < num_tokens:
        previous_end = plan[-1][0] + window
        start = min(plan[-1][0] + window - overlap, num_tokens - window)
        plan.append((start, previous_end - start))
    return plan


def _pad_to(x, length: int):
    if x is None or x.shape[0] >= length:
        return x
    pad = [(0, length - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad)


def generate(
    model: transformer.DrumLM,
    variables,
    *,
    drumless=None,
    beat=None,
    num_tokens: int | None = None,
    num_takes: int = 1,
    key,
    config: SamplingConfig = SamplingConfig(),
    on_window: Callable[[int, int, np.ndarray], None] | None = None,
    fixed=None,
) -> np.ndarray:
    """Drum codes for a whole song, `num_takes` takes at once.

    Args:
      model, variables: the LM.
      drumless: (S,) drumless codes of the song (seq2seq models; ignored by decoder-only ones).
      beat: the song's beat conditions on the token grid, (S, 50) low or (S,) mid/high
        (beat-conditioned models).
      num_tokens: S, needed only when neither `drumless` nor `beat` is given.
      num_takes: takes sampled in one batch.
      key: PRNG key.
      config: temperature, top-k, top-p, window overlap and guidance.
      on_window: called after each window as on_window(index, count, tokens (K, n_ctx)).
      fixed: (S,) int codes or None: positions ≥ 0 are fixed to that code in every take (e.g.
        the drum codes of a prime), the others (`FREE`) are sampled conditioned on them.

    Returns:
      (num_takes, S) int32 drum codes.

    Raises:
      ValueError: missing or inconsistent inputs, `fixed` codes outside the vocabulary, or
        guidance for an LM without conditions.
    """
    c = model.config
    guidance = None if config.guidance == 1 else jnp.float32(config.guidance)
    if guidance is not None and not c.encoder and c.beat == "none":
        raise ValueError("guidance needs an LM with conditions; this one has none")
    drumless = None if drumless is None or not c.encoder else np.asarray(drumless)
    beat = None if beat is None or c.beat == "none" else np.asarray(beat)
    if c.encoder and drumless is None:
        raise ValueError("this seq2seq LM needs the song's drumless codes")
    if c.beat != "none" and beat is None:
        raise ValueError(f"this LM needs {c.beat}-level beat conditions")
    if fixed is not None:
        fixed = np.asarray(fixed)
        valid = (fixed == FREE) | ((fixed >= 0) & (fixed < c.vocab_size))
        if fixed.ndim != 1 or not valid.all():
            raise ValueError(f"fixed must be (S,) codes in [0, {c.vocab_size}) or {FREE} (free)")
        fixed = fixed.astype(np.int32)
    lengths = {len(x) for x in (drumless, beat, fixed) if x is not None}
    if num_tokens is not None:
        lengths.add(int(num_tokens))
    if len(lengths) != 1:
        raise ValueError(f"inconsistent song lengths in tokens: {sorted(lengths)}")
    (num_tokens,) = lengths
    window = c.n_ctx
    overlap = window // 2 if config.overlap is None else config.overlap
    padded = max(num_tokens, window)
    drumless, beat = _pad_to(drumless, padded), _pad_to(beat, padded)
    tokens = np.zeros((num_takes, padded), np.int32)
    if fixed is not None:
        fixed = np.pad(fixed, (0, padded - num_tokens), constant_values=FREE)
        is_fixed = fixed != FREE
        tokens[:, is_fixed] = fixed[is_fixed]
    plan = window_plan(padded, window, overlap)
    for index, (start, primed) in enumerate(plan):
        span = slice(start, start + window)

        def takes(x, span=span):
            return None if x is None else np.broadcast_to(x[span], (num_takes, *x[span].shape))

        key, sub = jax.random.split(key)  # drawn for every window: fixing tokens moves no key
        if fixed is not None:
            # Fixed tokens right after the overlap are prefilled with it.
            free = np.flatnonzero(~is_fixed[span][primed:])
            primed += int(free[0]) if len(free) else window - primed
        if primed < window:
            out, _ = sample_window(
                model,
                variables,
                tokens[:, span],
                primed,
                takes(drumless),
                takes(beat),
                takes(fixed),
                key=sub,
                temperature=config.temperature,
                top_k=config.top_k,
                top_p=config.top_p,
                guidance=guidance,
            )
            tokens[:, span] = np.asarray(out)
        out = tokens[:, span].copy()
        if on_window is not None:
            on_window(index, len(plan), out)
    return tokens[:, :num_tokens]
