"""The reference LMs (`exp1.pkl`, `exp11.pkl`: jukebox `JukeTransformer`s) →
`jdrum.models.transformer.DrumLM`: `lm_config(state_dict)`, `lm_variables(state_dict, config)`,
and `load_official_lm(path)` / `lm_from_checkpoint(checkpoint)` as (`LMConfig`, variables).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from jdrum import torch_io
from jdrum.models import transformer

# jukebox ResAttnBlock entries → (flax path inside a `Layer`, kind).
_LM_LAYER = (
    ("attn.c_attn.w", ("attn_in", "kernel"), "matrix"),
    ("attn.c_attn.b", ("attn_in", "bias"), "vector"),
    ("attn.c_enc_kv.w", ("enc_kv", "kernel"), "matrix"),
    ("attn.c_enc_kv.b", ("enc_kv", "bias"), "vector"),
    ("attn.c_proj.w", ("attn_out", "kernel"), "matrix"),
    ("attn.c_proj.b", ("attn_out", "bias"), "vector"),
    ("ln_0.weight", ("ln_0", "norm", "scale"), "vector"),
    ("ln_0.bias", ("ln_0", "norm", "bias"), "vector"),
    ("mlp.c_fc.w", ("mlp_in", "kernel"), "matrix"),
    ("mlp.c_fc.b", ("mlp_in", "bias"), "vector"),
    ("mlp.c_proj.w", ("mlp_out", "kernel"), "matrix"),
    ("mlp.c_proj.b", ("mlp_out", "bias"), "vector"),
    ("ln_1.weight", ("ln_1", "norm", "scale"), "vector"),
    ("ln_1.bias", ("ln_1", "norm", "bias"), "vector"),
)
# Top-level entries → (flax path, kind). "row" is a (1, D) start token stored as (D,).
_LM_TOP = {
    "prior.start_token": (("prior_start",), "row"),
    "prior.x_emb.weight": (("prior_embed", "embedding"), "matrix"),
    "prior.pos_emb.pos_emb": (("prior_positions",), "matrix"),
    "prime_prior.start_token": (("prime_start",), "row"),
    "prime_prior.x_emb.weight": (("prime_embed", "embedding"), "matrix"),
    "prime_prior.pos_emb.pos_emb": (("prime_positions",), "matrix"),
    "prime_state_proj.w": (("encoder_kv_proj", "kernel"), "matrix"),
    "prime_state_proj.b": (("encoder_kv_proj", "bias"), "vector"),
    "prime_state_ln.weight": (("encoder_kv_norm", "norm", "scale"), "vector"),
    "prime_state_ln.bias": (("encoder_kv_norm", "norm", "bias"), "vector"),
    "binfo_state_proj.w": (("beat_proj", "kernel"), "matrix"),
    "binfo_state_proj.b": (("beat_proj", "bias"), "vector"),
    "onset_emb.weight": (("beat_embed", "embedding"), "matrix"),
    "beat_emb.weight": (("beat_embed", "embedding"), "matrix"),
}
_TIED_HEAD = "prior.x_out.weight"
_DECODER_ONLY = ("lm9", "lm10")  # reference LMs that never use their drumless encoder


def _layer_count(state_dict, stack: str) -> int:
    prefix = f"{stack}.transformer._attn_mods."
    indices = {key[len(prefix) :].split(".")[0] for key in state_dict if key.startswith(prefix)}
    return 1 + max((int(i) for i in indices if i.isdigit()), default=-1)


def lm_config(state_dict: Mapping[str, Any], hps: Mapping[str, Any] | None = None):
    """`LMConfig` of a reference `JukeTransformer` state_dict (sizes from the arrays, heads and
    blocks from the hps or the reference defaults 2 and 16)."""
    hps = dict(hps or {})

    def shape(key):
        if key not in state_dict:
            raise ValueError(f"LM state_dict: missing keys ['{key}']")
        return np.shape(state_dict[key])

    vocab, width = shape("prior.x_emb.weight")
    n_ctx = shape("prior.pos_emb.pos_emb")[0]
    prior_layers = _layer_count(state_dict, "prior")
    cross = any(".attn.c_enc_kv." in key for key in state_dict if key.startswith("prior."))
    if "binfo_state_proj.w" in state_dict:
        beat = "low"
    elif "onset_emb.weight" in state_dict:
        beat = "mid"
    elif "beat_emb.weight" in state_dict:
        beat = "high"
    else:
        beat = "none"
    encoder = cross and str(hps.get("name", "")) not in _DECODER_ONLY
    blocks = int(hps.get("blocks", 16))
    attn_width = shape("prior.transformer._attn_mods.0.attn.c_proj.w")[0]
    mlp_width = shape("prior.transformer._attn_mods.0.mlp.c_fc.w")[1]
    config = transformer.LMConfig(
        vocab_size=int(vocab),
        prime_vocab_size=int(shape("prime_prior.x_emb.weight")[0]) if encoder else 1024,
        n_ctx=int(n_ctx),
        width=int(width),
        heads=int(hps.get("heads", 2)),
        block_len=int(n_ctx) // blocks,
        prior_layers=prior_layers,
        prime_layers=_layer_count(state_dict, "prime_prior") if encoder else 9,
        attn_order=8 if cross else 2,
        encoder=encoder,
        beat=beat,
        high_dbn="reference",  # the DBN the reference's high-level LMs were trained with
        beat_features=int(shape("binfo_state_proj.w")[0]) if beat == "low" else 50,
        attn_mult=attn_width / width,
        mlp_mult=mlp_width / width,
    )
    return config


def _lm_array(key: str, value: Any, kind: str) -> np.ndarray:
    array = np.asarray(value, np.float32)
    expected = {"matrix": 2, "vector": 1, "row": 2}[kind]
    if array.ndim != expected or (kind == "row" and array.shape[0] != 1):
        raise ValueError(f"{key}: unexpected shape {array.shape} for a {kind}")
    return array[0] if kind == "row" else array


def lm_variables(state_dict: Mapping[str, Any], config) -> dict[str, Any]:
    """Converts a reference `JukeTransformer` state_dict into `DrumLM(config)` variables.

    jukebox Conv1D `w` (in, out) is a Dense kernel as is; LayerNorm weight/bias become
    scale/bias; the tied head `prior.x_out.weight` must equal `prior.x_emb.weight` and is
    dropped; layer d of a stack goes to group d // len(pattern) (stacked along the first
    axis of the scanned parameters) or to the tail. For decoder-only configs the reference's
    unused drumless encoder (`prime_*` entries) is dropped.

    Raises:
      ValueError: listing unknown and missing keys, or naming a wrongly shaped entry.
    """
    state_dict = dict(state_dict)
    if _TIED_HEAD in state_dict:
        head = np.asarray(state_dict.pop(_TIED_HEAD))
        if not np.array_equal(head, np.asarray(state_dict.get("prior.x_emb.weight"))):
            raise ValueError(f"{_TIED_HEAD} differs from prior.x_emb.weight (untied head)")
    if not config.encoder:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("prime_")}
    expected: dict[str, tuple[tuple[str, ...], str]] = {}
    stacks = [("prior", "prior", config.prior_layers, config.attn_order)]
    if config.encoder:
        stacks.append(("prime_prior", "prime", config.prime_layers, 2))
    layer_entries: dict[str, list] = {}
    for torch_stack, flax_stack, depth, order in stacks:
        kinds = transformer.layer_kinds(order, depth)
        pattern = transformer._pattern(order)  # noqa: SLF001
        groups = depth // len(pattern)
        for d, kind in enumerate(kinds):
            for name, path, array_kind in _LM_LAYER:
                if "c_enc_kv" in name and kind != transformer.attention.CROSS:
                    continue
                key = f"{torch_stack}.transformer._attn_mods.{d}.{name}"
                if d < groups * len(pattern):
                    where = (flax_stack, "groups", f"layers_{d % len(pattern)}", *path)
                    layer_entries.setdefault("/".join(where), [None] * groups)
                    expected[key] = (where, array_kind + f"@{d // len(pattern)}")
                else:
                    where = (flax_stack, "tail", f"layers_{d - groups * len(pattern)}", *path)
                    expected[key] = (where, array_kind)
    for key, (path, kind) in _LM_TOP.items():
        top = key.split(".")[0]
        if top.startswith("prime") and not config.encoder:
            continue
        if top in ("binfo_state_proj", "onset_emb", "beat_emb"):
            wanted = {"binfo_state_proj": "low", "onset_emb": "mid", "beat_emb": "high"}[top]
            if config.beat != wanted:
                continue
        expected[key] = (path, kind)
    torch_io.check_keys("LM state_dict", list(state_dict), list(expected))
    params: dict[str, Any] = {}
    for key, (path, kind) in expected.items():
        kind, _, index = kind.partition("@")
        array = _lm_array(key, state_dict[key], kind)
        if index:
            layer_entries["/".join(path)][int(index)] = array
            continue
        _set(params, path, array)
    for joined, arrays in layer_entries.items():
        _set(params, tuple(joined.split("/")), np.stack(arrays))
    return {"params": params}


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def lm_from_checkpoint(checkpoint: Mapping[str, Any]):
    """An official LM checkpoint dict (`model`, optional `hps`) → (LMConfig, variables)."""
    torch_io.check_keys("LM checkpoint", [k for k in checkpoint if k != "hps"], ["model"])
    config = lm_config(checkpoint["model"], checkpoint.get("hps"))
    return config, lm_variables(checkpoint["model"], config)


def load_official_lm(path: str | os.PathLike):
    """Reads `exp1.pkl` / `exp11.pkl` (or the same layout as .npz) → (LMConfig, variables)."""
    return lm_from_checkpoint(torch_io.read_checkpoint(path))
