"""The JukeDrummer language model: drumless encoder ("prime") + causal drum prior (REFERENCE §3).

`DrumLM(LMConfig)` reads a window of drumless codes (N, L) and beat conditions on the same
token grid, and predicts drum codes (N, L). Its parts:

* beat conditioner (§4.4): `low` (N, L, 50) tracker embeddings → Dense(50→D); `mid` (N, L)
  0/1 beat peaks → Embed(2, D); `high` (N, L) positions in the bar (values > 1 become 2) →
  Embed(3, D); `none` → no conditioning. The result c (N, L, D) is added to the encoder's
  input and output, and, shifted right by one token, to the prior's input and output.
* conditions dropped (classifier-free guidance): `keep_beat` / `keep_drumless` (N,) masks
  zero c, or the encoder's output, of the examples where they are 0. Training drops them at
  random (`jdrum.trainers.lm`) so that the same model also predicts without them;
  `jdrum.inference.sampling` mixes the two predictions.
* drumless encoder (non-causal, `prime_layers` layers of kinds 1, 2, 3) → Dense + LayerNorm
  → encoder_kv (N, L, D), read by the prior's cross-attention layers. Decoder-only variants
  (`encoder=False`, the reference's lm9/lm10) have no encoder.
* causal drum prior: embeddings shifted right behind a learned start token + learned
  positions + shifted c → `prior_layers` pre-LayerNorm blocks (attention kinds by
  `attn_order`: 8 → 1,2,3,1,2,3,1,2,3,6 repeating, i.e. cross-attention every 10th layer; 2 →
  1,2,3 repeating) → + shifted c → logits against the tied input embedding (no bias).

The repeating group of layers is one `nn.scan` (optionally rematerialised); layers left over
after the last whole group (e.g. 20 layers of pattern 1,2,3) follow unscanned as "tail".

Decoding: `prefill` runs the teacher-forced prior and returns its key/value cache, an explicit
pytree with one {"k", "v"} pair of (N, L, attention width) arrays per layer (cross-attention
layers hold the encoder's projected keys/values); `step` consumes one token and returns the
logits of the next position and the updated cache (`jdrum.inference.sampling` loops over it).

Shapes: N batch, L tokens (a multiple of `block_len`, at most `n_ctx`), D width, V vocabulary.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdrum.beat import conditions
from jdrum.models import attention

BEAT_KINDS = ("none", "low", "mid", "high")
LN_EPS = 1e-5
REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def layer_kinds(attn_order: int, num_layers: int) -> tuple[int, ...]:
    """Attention kind of each layer for jukebox's `attn_order` (2 or 8)."""
    return tuple(_pattern(attn_order)[d % len(_pattern(attn_order))] for d in range(num_layers))


def _pattern(attn_order: int) -> tuple[int, ...]:
    b, t, p, c = attention.BLOCK, attention.TRANSPOSE, attention.PREVIOUS, attention.CROSS
    patterns = {2: (b, t, p), 8: (b, t, p, b, t, p, b, t, p, c)}
    if attn_order not in patterns:
        raise ValueError(f"attn_order {attn_order} is not one of {sorted(patterns)}")
    return patterns[attn_order]


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Sizes and switches of `DrumLM` (defaults: the paper's lm1, REFERENCE §3.2)."""

    vocab_size: int = 32  # drum codebook size
    prime_vocab_size: int = 1024  # drumless codebook size
    n_ctx: int = 1024  # tokens per window (learned position tables)
    width: int = 512  # D
    heads: int = 2
    block_len: int = 64  # tokens per attention block (n_ctx / 16)
    prior_layers: int = 20
    prime_layers: int = 9
    attn_order: int = 8  # prior layer pattern: 8 (with cross-attention) or 2
    encoder: bool = True  # seq2seq (drumless encoder) or decoder-only
    beat: str = "low"  # "none", "low", "mid" or "high"
    # The high level's DBN (`jdrum.beat.conditions.HIGH_DBNS`): "madmom" (madmom's defaults,
    # which find beats on drumless audio) or "reference" (REFERENCE §4.3, threshold 0.65).
    high_dbn: str = "madmom"
    beat_features: int = 50  # width of the low-level beat embedding
    attn_mult: float = 0.25  # attention width = width · attn_mult
    mlp_mult: float = 1.0  # MLP hidden width = width · mlp_mult
    emb_dropout: float = 0.2  # prior embeddings (element, position and position-table drops)
    attn_dropout: float = 0.3
    resid_dropout: float = 0.3
    init_scale: float = 0.7  # linear weights ~ N(0, (0.02 · init_scale)²)
    beat_init_std: float = 0.02  # mid/high beat embeddings (reference N(0, 1), REFERENCE §10.14)
    remat_policy: str = "none"  # "none", "full" or "dots" (jax.checkpoint policies)
    dtype: str = "float32"  # compute dtype ("bfloat16": parameters stay float32)

    def __post_init__(self):
        if self.beat not in BEAT_KINDS:
            raise ValueError(f"beat {self.beat!r} is not one of {BEAT_KINDS}")
        if self.high_dbn not in conditions.HIGH_DBNS:
            raise ValueError(f"high_dbn {self.high_dbn!r} is not one of {conditions.HIGH_DBNS}")
        if self.remat_policy not in REMAT_POLICIES:
            raise ValueError(f"remat_policy {self.remat_policy!r} not in {list(REMAT_POLICIES)}")
        if self.n_ctx % self.block_len:
            raise ValueError(f"n_ctx {self.n_ctx} is not a multiple of block_len {self.block_len}")
        if attention.CROSS in _pattern(self.attn_order) and not self.encoder:
            raise ValueError("attn_order 8 has cross-attention layers; it needs encoder=True")

    @property
    def attn_width(self) -> int:
        return int(self.width * self.attn_mult)

    @property
    def mlp_width(self) -> int:
        return int(self.width * self.mlp_mult)

    @property
    def compute_dtype(self):
        return jnp.dtype(self.dtype)

    @property
    def linear_std(self) -> float:
        return 0.02 * self.init_scale

    def make(self) -> DrumLM:
        return DrumLM(self)

    def example_inputs(self) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
        """(drum, drumless, beat) of one window of zeros, what `DrumLM.init` takes after the
        key; drumless is None without an encoder, beat None without a beat condition."""
        drum = jnp.zeros((1, self.n_ctx), jnp.int32)
        beat = None
        if self.beat == "low":
            beat = jnp.zeros((1, self.n_ctx, self.beat_features), jnp.float32)
        elif self.beat != "none":
            beat = drum
        return drum, drum if self.encoder else None, beat


def quick_gelu(x: jax.Array) -> jax.Array:
    return x * jax.nn.sigmoid(1.702 * x)


class LayerNorm(nn.Module):
    """LayerNorm with eps 1e-5, computed in float32, returned in the input's dtype."""

    @nn.compact
    def __call__(self, x):
        y = nn.LayerNorm(epsilon=LN_EPS, dtype=jnp.float32, name="norm")(x.astype(jnp.float32))
        return y.astype(x.dtype)


class Layer(nn.Module):
    """One pre-LayerNorm block (jukebox `ResAttnBlock`): x + a + MLP(LN₁(x + a)),
    a = Attn(LN₀(x))."""

    config: LMConfig
    kind: int
    causal: bool

    def setup(self):
        c = self.config
        dense = lambda features, std=c.linear_std: nn.Dense(  # noqa: E731
            features,
            dtype=c.compute_dtype,
            kernel_init=nn.initializers.normal(std),
            bias_init=nn.initializers.zeros,
        )
        # Cross-attention layers start as the identity (jukebox forces zero_out there).
        out_std = 0.0 if self.kind == attention.CROSS else c.linear_std
        self.ln_0, self.ln_1 = LayerNorm(), LayerNorm()
        cross = self.kind == attention.CROSS
        self.attn_in = dense(c.attn_width if cross else 3 * c.attn_width)
        if cross:
            self.enc_kv = dense(2 * c.attn_width)
        self.attn_out = dense(c.width, out_std)
        self.mlp_in = dense(c.mlp_width)
        self.mlp_out = dense(c.width, out_std)
        self.attn_drop = nn.Dropout(c.attn_dropout)
        self.resid_drop = nn.Dropout(c.resid_dropout)

    def _qkv(self, h, encoder_kv):
        if self.kind == attention.CROSS:
            k, v = jnp.split(self.enc_kv(encoder_kv.astype(h.dtype)), 2, axis=-1)
            return self.attn_in(h), k, v
        return jnp.split(self.attn_in(h), 3, axis=-1)

    def _rest(self, x, a, deterministic):
        a = self.resid_drop(self.attn_out(a), deterministic=deterministic)
        m = self.mlp_out(quick_gelu(self.mlp_in(self.ln_1(x + a))))
        return x + a + self.resid_drop(m, deterministic=deterministic)

    def __call__(self, x, encoder_kv, deterministic: bool):
        """Teacher forced: (N, L, D) → (N, L, D), and this layer's cache {"k", "v"}."""
        q, k, v = self._qkv(self.ln_0(x), encoder_kv)
        a = attention.attend(
            self.kind,
            q,
            k,
            v,
            heads=self.config.heads,
            block_len=self.config.block_len,
            causal=self.causal,
            dropout=lambda w: self.attn_drop(w, deterministic=deterministic),
        )
        return self._rest(x, a, deterministic), {"k": k, "v": v}

    def step(self, x_Nx1xD, cache, t):
        """One causal decoding step at position t (cache positions < t filled) →
        (x, this position's {"k", "v"} rows (N, 1, A), or None for cross-attention)."""
        h = self.ln_0(x_Nx1xD)
        rows = None
        if self.kind == attention.CROSS:
            q = self.attn_in(h)
        else:
            q, k, v = jnp.split(self.attn_in(h), 3, axis=-1)
            rows = {"k": k.astype(cache["k"].dtype), "v": v.astype(cache["v"].dtype)}
        a = attention.attend_step(
            self.kind,
            q,
            cache["k"].astype(q.dtype),
            cache["v"].astype(q.dtype),
            t,
            heads=self.config.heads,
            block_len=self.config.block_len,
            k_new=None if rows is None else rows["k"].astype(q.dtype),
            v_new=None if rows is None else rows["v"].astype(q.dtype),
        )
        return self._rest(x_Nx1xD, a, True), rows


class Group(nn.Module):
    """Consecutive layers of the given kinds (one repetition of the layer pattern)."""

    config: LMConfig
    kinds: tuple[int, ...]
    causal: bool

    def setup(self):
        self.layers = [Layer(self.config, kind, self.causal) for kind in self.kinds]

    def __call__(self, x, encoder_kv, deterministic: bool):
        caches = []
        for layer in self.layers:
            x, cache = layer(x, encoder_kv, deterministic)
            caches.append(cache)
        return x, tuple(caches)

    def step(self, x, caches, t):
        rows = []
        for layer, cache in zip(self.layers, caches, strict=True):
            x, row = layer.step(x, cache, t)
            rows.append(row)
        return x, tuple(rows)


class Stack(nn.Module):
    """`len(kinds)` layers: whole repetitions of `pattern` scanned, the rest as a tail."""

    config: LMConfig
    kinds: tuple[int, ...]
    pattern: tuple[int, ...]
    causal: bool

    @property
    def num_groups(self) -> int:
        return len(self.kinds) // len(self.pattern)

    @property
    def tail_kinds(self) -> tuple[int, ...]:
        return self.kinds[self.num_groups * len(self.pattern) :]

    def setup(self):
        group = Group
        policy = REMAT_POLICIES[self.config.remat_policy]
        if self.config.remat_policy != "none":
            group = nn.remat(Group, policy=policy, prevent_cse=False, static_argnums=(3,))
        self.groups = None
        if self.num_groups:
            self.groups = nn.scan(
                group,
                variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(nn.broadcast, nn.broadcast),
                length=self.num_groups,
            )(self.config, self.pattern, self.causal)
        self.tail = Group(self.config, self.tail_kinds, self.causal) if self.tail_kinds else None

    def __call__(self, x, encoder_kv, deterministic: bool):
        """(N, L, D) → (N, L, D) and the cache {"groups": per pattern position {"k", "v"}
        stacked over groups (G, N, L, A), "tail": per tail layer {"k", "v"}}."""
        cache = {}
        if self.groups is not None:
            x, cache["groups"] = self.groups(x, encoder_kv, deterministic)
        if self.tail is not None:
            x, cache["tail"] = self.tail(x, encoder_kv, deterministic)
        return x, cache

    def step(self, x, cache, t):
        """One decoding step → (x, cache with position t's keys/values written)."""
        rows = {}
        if self.groups is not None:
            params = self.variables["params"]["groups"]
            group = Group(self.config, self.pattern, self.causal, parent=None)  # unbound

            def body(h, p_and_cache):
                p, group_cache = p_and_cache
                return group.apply({"params": p}, h, group_cache, t, method=Group.step)

            x, rows["groups"] = jax.lax.scan(body, x, (params, cache["groups"]))
        if self.tail is not None:
            x, rows["tail"] = self.tail.step(x, cache["tail"], t)
        return x, _write_rows(cache, rows, t)


def _write_rows(cache, rows, t):
    """Writes each self-attention layer's new key/value row at position t (one in-place
    update of every cache buffer; cross-attention caches are left as they are)."""
    new = {}
    for part, layers in cache.items():
        new[part] = tuple(
            layer_cache
            if row is None
            else {
                name: jax.lax.dynamic_update_index_in_dim(
                    layer_cache[name], row[name][..., 0, :], t, axis=layer_cache[name].ndim - 2
                )
                for name in ("k", "v")
            }
            for layer_cache, row in zip(layers, rows[part], strict=True)
        )
    return new


def shift_right(c_NxLxD: jax.Array) -> jax.Array:
    """c'[:, 0] = 0, c'[:, t] = c[:, t − 1] (the prior's view of the beat conditioning)."""
    return jnp.pad(c_NxLxD[:, :-1], ((0, 0), (1, 0), (0, 0)))


class DrumLM(nn.Module):
    """Drumless encoder + causal drum prior; see the module docstring."""

    config: LMConfig

    def setup(self):
        c = self.config
        emb_std, pos_std = c.linear_std, 0.01 * c.init_scale
        normal = nn.initializers.normal
        if c.beat == "low":
            self.beat_proj = nn.Dense(
                c.width, kernel_init=normal(0.02), bias_init=nn.initializers.zeros
            )
        elif c.beat in ("mid", "high"):
            self.beat_embed = nn.Embed(
                2 if c.beat == "mid" else 3, c.width, embedding_init=normal(c.beat_init_std)
            )
        prior_kinds = layer_kinds(c.attn_order, c.prior_layers)
        self.prior_embed = nn.Embed(c.vocab_size, c.width, embedding_init=normal(emb_std))
        self.prior_start = self.param("prior_start", normal(pos_std), (c.width,))
        self.prior_positions = self.param("prior_positions", normal(pos_std), (c.n_ctx, c.width))
        self.prior = Stack(c, prior_kinds, _pattern(c.attn_order), causal=True)
        self.elem_drop = nn.Dropout(c.emb_dropout)
        self.position_drop = nn.Dropout(c.emb_dropout, broadcast_dims=(2,))
        self.table_drop = nn.Dropout(c.emb_dropout)
        if c.encoder:
            self.prime_embed = nn.Embed(c.prime_vocab_size, c.width, embedding_init=normal(emb_std))
            # Unused by the model, kept so that the reference's checkpoints (and parameter
            # counts, REFERENCE §8.2) round-trip: jukebox builds a start token for the prime.
            self.prime_start = self.param("prime_start", normal(pos_std), (c.width,))
            self.prime_positions = self.param(
                "prime_positions", normal(pos_std), (c.n_ctx, c.width)
            )
            self.prime = Stack(c, layer_kinds(2, c.prime_layers), _pattern(2), causal=False)
            self.encoder_kv_proj = nn.Dense(
                c.width, kernel_init=normal(0.02), bias_init=nn.initializers.zeros
            )
            self.encoder_kv_norm = LayerNorm()

    # ----------------------------------------------------------------------------- pieces

    def condition(self, beat, length: int, keep_beat=None):
        """(N, L, D) float32 beat conditioning c, or None for `beat="none"`.

        `beat`: low (N, L, 50) float, mid (N, L) 0/1, high (N, L) positions in the bar.
        `keep_beat`: (N,) or None; c is 0 where it is 0.
        """
        kind = self.config.beat
        if kind == "none":
            return None
        if beat is None:
            raise ValueError(f"this LM is conditioned on {kind}-level beats; got none")
        if beat.shape[1] != length:
            raise ValueError(f"beat conditions have {beat.shape[1]} tokens, codes have {length}")
        if kind == "low":
            c = self.beat_proj(jnp.asarray(beat, jnp.float32))
        else:
            labels = jnp.asarray(beat).astype(jnp.int32)
            if kind == "high":
                labels = jnp.minimum(labels, 2)
            c = self.beat_embed(labels)
        return c if keep_beat is None else c * _mask(keep_beat, c)

    def encode(self, drumless_NxL, cond=None, deterministic: bool = True):
        """encoder_kv (N, L, D) of drumless codes (`cond` from `condition`, or None)."""
        length = drumless_NxL.shape[1]
        h = self.prime_embed(drumless_NxL) + self.prime_positions[None, :length]
        if cond is not None:
            h = h + cond
        acts, _ = self.prime(h.astype(self.config.compute_dtype), None, deterministic)
        acts = acts.astype(jnp.float32)
        if cond is not None:
            acts = acts + cond
        return self.encoder_kv_norm(self.encoder_kv_proj(acts))

    def _prior_input(self, drum_NxL, cond_shifted, deterministic):
        n, length = drum_NxL.shape
        e = self.prior_embed(drum_NxL)
        start = jnp.broadcast_to(self.prior_start, (n, 1, self.config.width))
        e = jnp.concatenate([start, e[:, :-1]], axis=1)
        e = self.position_drop(self.elem_drop(e, deterministic), deterministic)
        h = e + self.table_drop(self.prior_positions[None, :length], deterministic)
        return h if cond_shifted is None else h + cond_shifted

    def _logits(self, y):
        return jnp.einsum(
            "...d,vd->...v", y.astype(jnp.float32), self.prior_embed.embedding.astype(jnp.float32)
        )

    # ------------------------------------------------------------------------ entry points

    def __call__(
        self,
        drum_NxL,
        drumless_NxL=None,
        beat=None,
        deterministic: bool = True,
        keep_beat=None,
        keep_drumless=None,
    ):
        """Teacher-forced logits (N, L, V) float32 of the drum codes."""
        logits, _ = self.prefill(
            drum_NxL, drumless_NxL, beat, deterministic, keep_beat, keep_drumless
        )
        return logits

    def prefill(
        self,
        drum_NxL,
        drumless_NxL=None,
        beat=None,
        deterministic: bool = True,
        keep_beat=None,
        keep_drumless=None,
    ):
        """(logits (N, L, V), cache) of the teacher-forced prior; the cache at positions < t
        is what `step` needs to continue from position t. `keep_beat`, `keep_drumless`: (N,)
        masks, 0 where that condition is dropped (None: kept everywhere)."""
        length = drum_NxL.shape[1]
        cond = self.condition(beat, length, keep_beat)
        encoder_kv = None
        if self.config.encoder:
            if drumless_NxL is None:
                raise ValueError("this seq2seq LM needs drumless codes")
            encoder_kv = self.encode(drumless_NxL, cond, deterministic)
            if keep_drumless is not None:
                encoder_kv = encoder_kv * _mask(keep_drumless, encoder_kv)
        shifted = None if cond is None else shift_right(cond)
        h = self._prior_input(drum_NxL, shifted, deterministic)
        y, cache = self.prior(h.astype(self.config.compute_dtype), encoder_kv, deterministic)
        y = y.astype(jnp.float32)
        if shifted is not None:
            y = y + shifted
        return self._logits(y), cache

    def step(self, prev_N, t, cond_shifted_NxD, cache):
        """One decoding step: the token at position t − 1 (ignored at t = 0, where the start
        token is used) → (logits (N, V) of position t, updated cache). `cond_shifted_NxD` is
        row t of `shift_right(c)` (None without beat conditioning)."""
        e = jnp.where(t == 0, self.prior_start[None], self.prior_embed(prev_N))
        h = e + jax.lax.dynamic_index_in_dim(self.prior_positions, t, keepdims=True)
        if cond_shifted_NxD is not None:
            h = h + cond_shifted_NxD
        y, cache = self.prior.step(h[:, None].astype(self.config.compute_dtype), cache, t)
        y = y[:, 0].astype(jnp.float32)
        if cond_shifted_NxD is not None:
            y = y + cond_shifted_NxD
        return self._logits(y), cache


def _mask(keep_N, x_NxLxD: jax.Array) -> jax.Array:
    """(N, 1, 1) of a per-example keep mask, in x's dtype."""
    return jnp.asarray(keep_N, x_NxLxD.dtype)[:, None, None]


def loss_bits(logits_NxLxV, targets_NxL) -> jax.Array:
    """Mean cross-entropy in bits per token (REFERENCE §3.7)."""
    logp = jax.nn.log_softmax(logits_NxLxV.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, targets_NxL[..., None], axis=-1)[..., 0]
    return jnp.mean(nll) / math.log(2.0)


def param_count(config: LMConfig) -> int:
    """Parameters of `DrumLM(config)` (from shapes only)."""
    model = DrumLM(config)
    tokens = jax.ShapeDtypeStruct((1, config.n_ctx), jnp.int32)
    beat = {
        "none": None,
        "low": jax.ShapeDtypeStruct((1, config.n_ctx, config.beat_features), jnp.float32),
        "mid": tokens,
        "high": tokens,
    }[config.beat]
    drumless = tokens if config.encoder else None
    shapes = jax.eval_shape(model.init, jax.random.key(0), tokens, drumless, beat)
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))
