"""Official JukeDrummer PyTorch checkpoints → jdrum flax variables.

Library functions, reusable from a CLI or a notebook:

* `read_checkpoint(path)`: a checkpoint file as nested dicts of NumPy arrays. `.pkl`, `.pth`,
  `.pt` are read with torch (`pip install 'jdrum[convert]'`); `.npz` directly, its names split at
  the first "/" (so `model/<state_dict key>`, `mean`, `std`, `hps/codebook_size` hold the same
  checkpoint without torch).
* `vqvae_variables(state_dict)`: the reference `VQVAE` state_dict as `jdrum.models.vqvae.VQVAE`
  variables.
* `load_official_vqvae(path)` / `vqvae_from_checkpoint(checkpoint)`: a `vq1_*.pkl` file (dict with
  `model`, `mean`, `std`, `hps`) as (model config, variables, mel statistics).
* `load_official_lm(path)` / `lm_from_checkpoint(checkpoint)`: `exp1.pkl`, `exp11.pkl` (dict with
  `model`, `hps`) as (`LMConfig`, `DrumLM` variables); `lm_config`, `lm_variables` do the parts.
* `da2_tracker_variables(path)`: the DA2 beat tracker `RNNBeatProc.pth` (its "nodrum" head).

Names that do not map are never skipped: unknown and missing keys raise one `ValueError`.

Command line (a converted run directory, read by `python -m jdrum.tokenize` and sampling):

    python -m jdrum.convert --vqvae ckpt/vq1_target.pkl --stem drums --out runs/official/vqvae_drums
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdrum.audio import MelStats
from jdrum.models import quantizer, vqvae

TORCH_SUFFIXES = (".pkl", ".pth", ".pt")
CODEBOOK_KEY = "vq.k"

# BodyGBlock: PyTorch `block.<i>` entries → flax path inside the block, and the entry's kind.
_BODY_BLOCK = (
    ("block.0.weight", ("conv_in", "kernel"), "conv"),
    ("block.0.bias", ("conv_in", "bias"), "vector"),
    ("block.1.weight", ("norm", "scale"), "vector"),
    ("block.1.bias", ("norm", "bias"), "vector"),
    ("block.3.conv.weight", ("rc", "conv", "kernel"), "conv"),
    ("block.3.conv.bias", ("rc", "conv", "bias"), "vector"),
    ("block.3.gn.weight", ("rc", "norm", "scale"), "vector"),
    ("block.3.gn.bias", ("rc", "norm", "bias"), "vector"),
    ("block.4.weight", ("conv_out", "kernel"), "conv"),
    ("block.4.bias", ("conv_out", "bias"), "vector"),
)
_HEAD = (("weight", ("kernel",), "conv"), ("bias", ("bias",), "vector"))


# ------------------------------------------------------------------------------ reading files


def _to_numpy(value: Any) -> Any:
    """torch tensors (also inside dicts, lists, tuples) → NumPy arrays; the rest unchanged."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    if isinstance(value, Mapping):
        return {key: _to_numpy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_numpy(item) for item in value)
    return value


def _nest(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        head, sep, rest = name.partition("/")
        if sep:
            nested.setdefault(head, {})[rest] = value
        else:
            nested[name] = value
    return nested


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a checkpoint file into plain dicts of NumPy arrays.

    `.pkl`/`.pth`/`.pt`: `torch.load(map_location="cpu", weights_only=False)` — the official
    pickles hold NumPy arrays next to the tensors, so the safe loader cannot read them; only
    read files you trust. `.npz`: names are split at the first "/" into nested dicts.

    Args:
      path: the checkpoint file.

    Returns:
      The checkpoint's top-level dict (a bare state_dict for state_dict files).
    """
    path = pathlib.Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return _nest({name: npz[name] for name in npz.files})
    # The official vocoder file (`ckpt/vocoder/generator`) has no extension: a torch file too.
    if path.suffix and path.suffix not in TORCH_SUFFIXES:
        raise ValueError(f"{path}: unknown checkpoint type (expected .npz, .pkl, .pth or .pt)")
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading {path.name} needs torch: pip install 'jdrum[convert]'"
        ) from None
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path}: expected a dict, got {type(checkpoint).__name__}")
    return _to_numpy(checkpoint)


# ------------------------------------------------------------------------------ the VQ-VAE


def _check_keys(what: str, given, expected) -> None:
    unknown = [key for key in given if key not in expected]
    missing = [key for key in expected if key not in given]
    if unknown or missing:
        raise ValueError(f"{what}: unknown keys {unknown}; missing keys {missing}")


def _num_stages(state_dict: Mapping[str, Any], side: str) -> int:
    prefix = f"{side}.blocks."
    indices = {key[len(prefix) :].split(".")[0] for key in state_dict if key.startswith(prefix)}
    return 1 + max((int(i) for i in indices if i.isdigit()), default=-1)


def _vqvae_key_map(state_dict: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], str]]:
    """Every state_dict key the reference VQVAE has → (flax params path, kind)."""
    key_map = {}
    for side in ("encoder", "decoder"):
        stages = _num_stages(state_dict, side)
        blocks = [("block0", "block0")] + [(f"blocks.{i}", f"blocks_{i}") for i in range(stages)]
        heads = [("head0", "head0")] + [(f"heads.{i}", f"heads_{i}") for i in range(stages)]
        for entries, modules in ((_BODY_BLOCK, blocks), (_HEAD, heads)):
            for torch_module, flax_module in modules:
                for name, path, kind in entries:
                    key_map[f"{side}.{torch_module}.{name}"] = ((side, flax_module, *path), kind)
    return key_map


def _convert(key: str, value: Any, kind: str) -> np.ndarray:
    array = np.asarray(value, np.float32)
    if kind == "conv":
        if array.ndim != 3:
            raise ValueError(
                f"{key}: expected a Conv1d weight (out, in/groups, k), got {array.shape}"
            )
        return array.transpose(2, 1, 0)  # (k, in/groups, out)
    if array.ndim != 1:
        raise ValueError(f"{key}: expected a vector, got shape {array.shape}")
    return array


def codebook_variables(k_KxD: np.ndarray, initialised: bool = True) -> dict[str, np.ndarray]:
    """The `"codebook"` collection of a trained codebook (jukebox `restore_k`).

    k_sum = k and k_elem = 1, so EMA training resumes from the trained codes. The reference does
    not save its init flag and re-initialises a loaded codebook from the first training batch;
    `initialised=False` reproduces that.
    """
    k_KxD = np.asarray(k_KxD, np.float32)
    if k_KxD.ndim != 2:
        raise ValueError(f"{CODEBOOK_KEY}: expected a (K, D) codebook, got {k_KxD.shape}")
    return {
        "k": k_KxD,
        "k_sum": k_KxD.copy(),
        "k_elem": np.ones(k_KxD.shape[:1], np.float32),
        "initialised": np.asarray(initialised),
    }


def vqvae_variables(
    state_dict: Mapping[str, Any], *, initialised: bool = True
) -> dict[str, dict[str, Any]]:
    """Converts a reference `model.vqvae.VQVAE` state_dict (PyTorch names and layouts).

    Conv1d weights (out, in/groups, k) become kernels (k, in/groups, out); GroupNorm weight/bias
    become scale/bias; `vq.k` becomes the `"codebook"` collection (`codebook_variables`).

    Args:
      state_dict: name → array (NumPy or anything `np.asarray` takes).
      initialised: mark the codebook as initialised (see `codebook_variables`).

    Returns:
      `{"params": {"encoder": ..., "decoder": ...}, "codebook": {"quantizer": ...}}` with NumPy
      float32 leaves, for `VQVAE.apply`.

    Raises:
      ValueError: listing unknown and missing keys, or naming an entry of the wrong rank.
    """
    key_map = _vqvae_key_map(state_dict)
    _check_keys("VQ-VAE state_dict", list(state_dict), [CODEBOOK_KEY, *key_map])
    params: dict[str, Any] = {}
    for key, (path, kind) in key_map.items():
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _convert(key, state_dict[key], kind)
    codebook = codebook_variables(state_dict[CODEBOOK_KEY], initialised)
    return {"params": params, quantizer.COLLECTION: {"quantizer": codebook}}


def vqvae_config(
    state_dict: Mapping[str, Any], hps: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`VQVAE` keyword arguments of a reference checkpoint (sizes from the arrays, ratios and
    commit_beta from the stored hps, the reference defaults where the hps do not say)."""
    hps = dict(hps or {})
    first_conv = np.shape(state_dict["encoder.block0.block.0.weight"])
    codebook_size, latent = np.shape(state_dict[CODEBOOK_KEY])
    if "codebook_size" in hps and int(hps["codebook_size"]) != codebook_size:
        raise ValueError(
            f"hps codebook_size {hps['codebook_size']} != {CODEBOOK_KEY} rows {codebook_size}"
        )
    return {
        "codebook_size": int(codebook_size),
        "width": int(first_conv[0]),
        "latent": int(latent),
        "n_mels": int(first_conv[1]),
        "down": tuple(np.asarray(hps.get("downsample_ratios", (0.5, 0.5))).tolist()),
        "up": tuple(np.asarray(hps.get("upsample_ratios", (2, 2))).tolist()),
        "commit_beta": float(hps.get("commit_beta", 0.02)),
    }


@functools.cache
def _abstract_variables(config: tuple) -> Any:
    model = vqvae.VQVAE(**dict(config))
    mel = jax.ShapeDtypeStruct((1, model.n_mels, 16), jnp.float32)
    init = functools.partial(model.init, train=False)
    return jax.eval_shape(init, jax.random.key(0), mel)


def _check_shapes(what: str, expected, variables) -> None:
    """Compares converted variables with the abstract variables a model's init creates:
    one ValueError naming unknown and missing entries, or entries of the wrong shape."""
    flat_expected = {
        jax.tree_util.keystr(p): leaf.shape
        for p, leaf in jax.tree_util.tree_leaves_with_path(expected)
    }
    flat_given = {
        jax.tree_util.keystr(p): np.shape(leaf)
        for p, leaf in jax.tree_util.tree_leaves_with_path(variables)
    }
    _check_keys(what, flat_given, flat_expected)
    wrong = [f"{p} {flat_given[p]} != {s}" for p, s in flat_expected.items() if flat_given[p] != s]
    if wrong:
        raise ValueError(f"{what}: wrong shapes {wrong}")


def _check_against_model(config: Mapping[str, Any], variables) -> None:
    """Compares converted variables with what `VQVAE(**config).init` creates."""
    expected = _abstract_variables(tuple(config.items()))
    _check_shapes(f"VQ-VAE variables for {dict(config)}", expected, variables)


def vqvae_from_checkpoint(
    checkpoint: Mapping[str, Any], *, initialised: bool = True
) -> tuple[dict[str, Any], dict[str, Any], MelStats]:
    """Splits an official VQ-VAE checkpoint dict (`model`, `mean`, `std`, optional `hps`).

    Returns:
      (config, variables, stats): `VQVAE(**config)` with `variables` reproduces the reference
      model; `stats` normalises its input mels.
    """
    _check_keys(
        "VQ-VAE checkpoint", [k for k in checkpoint if k != "hps"], ["model", "mean", "std"]
    )
    state_dict = checkpoint["model"]
    variables = vqvae_variables(state_dict, initialised=initialised)
    config = vqvae_config(state_dict, checkpoint.get("hps"))
    _check_against_model(config, variables)
    return config, variables, MelStats.from_dict(checkpoint)


def load_official_vqvae(
    path: str | os.PathLike, *, initialised: bool = True
) -> tuple[dict[str, Any], dict[str, Any], MelStats]:
    """Reads `vq1_target.pkl` / `vq1_others.pkl` (or the same layout as .npz).

    Returns:
      (config, variables, stats) as `vqvae_from_checkpoint`.
    """
    return vqvae_from_checkpoint(read_checkpoint(path), initialised=initialised)


# ------------------------------------------------------------------------------ the LM

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
    from jdrum.models import transformer

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
    from jdrum.models import transformer

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
    _check_keys("LM state_dict", list(state_dict), list(expected))
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
    _check_keys("LM checkpoint", [k for k in checkpoint if k != "hps"], ["model"])
    config = lm_config(checkpoint["model"], checkpoint.get("hps"))
    return config, lm_variables(checkpoint["model"], config)


def load_official_lm(path: str | os.PathLike):
    """Reads `exp1.pkl` / `exp11.pkl` (or the same layout as .npz) → (LMConfig, variables)."""
    return lm_from_checkpoint(read_checkpoint(path))


# ---- HiFi-GAN ------------------------------------------------------------------- vocoder


def _hifigan_layout(state_dict: Mapping[str, Any]) -> tuple[int, int]:
    """(number of upsampling stages, ResBlocks per stage) of a reference generator state_dict."""

    def count(prefix):
        indices = {key[len(prefix) :].split(".")[0] for key in state_dict if key.startswith(prefix)}
        return 1 + max((int(i) for i in indices if i.isdigit()), default=-1)

    stages, blocks = count("ups."), count("resblocks.")
    if not stages or blocks % stages:
        raise ValueError(
            f"HiFi-GAN state_dict: {stages} upsampling stages and {blocks} resblocks do not make"
            " a generator"
        )
    return stages, blocks // stages


def _hifigan_convs(state_dict: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], bool]]:
    """Every convolution of the reference generator → (flax params path, is transposed)."""
    stages, per_stage = _hifigan_layout(state_dict)
    convs = {"conv_pre": (("conv_pre",), False), "conv_post": (("conv_post",), False)}
    for i in range(stages):
        convs[f"ups.{i}"] = ((f"ups_{i}",), True)
    for j in range(stages * per_stage):
        prefix = f"resblocks.{j}."
        layers = {key[len(prefix) :].split(".")[1] for key in state_dict if key.startswith(prefix)}
        for m in sorted(layers, key=lambda s: (not s.isdigit(), s)):
            for side in ("convs1", "convs2"):
                convs[f"{prefix}{side}.{m}"] = ((f"resblocks_{j}", f"{side}_{m}"), False)
    return convs


def _hifigan_weight(key: str, value: Any, transposed: bool) -> np.ndarray:
    """A PyTorch weight / weight_v (Conv1d (out, in, k), ConvTranspose1d (in, out, k)) → (k, in,
    out); both layouts reach the same flax layout by different transpositions."""
    array = np.asarray(value, np.float32)
    if array.ndim != 3:
        raise ValueError(f"{key}: expected a 1-D convolution weight, got shape {array.shape}")
    return array.transpose(2, 0, 1) if transposed else array.transpose(2, 1, 0)


def _hifigan_gain(key: str, value: Any, transposed: bool) -> np.ndarray:
    """weight_g (C, 1, 1) → g (1, 1, out) for Conv1d, (1, in, 1) for ConvTranspose1d."""
    array = np.asarray(value, np.float32)
    if array.ndim != 3 or array.shape[1:] != (1, 1):
        raise ValueError(f"{key}: expected a weight-norm gain (C, 1, 1), got shape {array.shape}")
    return array.reshape(1, -1, 1) if transposed else array.reshape(1, 1, -1)


def hifigan_variables(
    state_dict: Mapping[str, Any], *, weight_norm: bool
) -> dict[str, dict[str, Any]]:
    """Converts a reference `hifi_gan.models.Generator` state_dict (PyTorch names and layouts).

    Either form of the state_dict is read: weight-normalised (`conv_pre.weight_g`,
    `conv_pre.weight_v`, `ups.0.weight_v`, `resblocks.3.convs1.1.weight_g`, ..., as in the
    official `generator` file) or folded (`*.weight`, after `remove_weight_norm`); biases are
    `*.bias` in both.

    Args:
      state_dict: name → array (NumPy or anything `np.asarray` takes).
      weight_norm: return `Generator(weight_norm=True)` parameters (v, g, bias; for training)
        instead of folded kernels (inference). A weight-normalised state_dict is folded as
        PyTorch folds it; a folded one gets v = kernel and g = ‖kernel‖ (the same function).

    Returns:
      `{"params": ...}` for `jdrum.models.hifigan.Generator.apply`, NumPy float32 leaves.

    Raises:
      ValueError: listing unknown and missing keys, or naming an entry of the wrong shape.
    """
    from jdrum.models import hifigan

    convs = _hifigan_convs(state_dict)
    normed = any(key.endswith((".weight_g", ".weight_v")) for key in state_dict)
    names = ("weight_g", "weight_v", "bias") if normed else ("weight", "bias")
    expected = [f"{conv}.{name}" for conv in convs for name in names]
    _check_keys(
        f"HiFi-GAN generator state_dict ({'weight-norm' if normed else 'folded'} form)",
        list(state_dict),
        expected,
    )
    params: dict[str, Any] = {}
    for conv, (path, transposed) in convs.items():
        node = params
        for part in path:
            node = node.setdefault(part, {})
        bias = np.asarray(state_dict[f"{conv}.bias"], np.float32)
        if bias.ndim != 1:
            raise ValueError(f"{conv}.bias: expected a vector, got shape {bias.shape}")
        node["bias"] = bias
        if normed:
            v = _hifigan_weight(f"{conv}.weight_v", state_dict[f"{conv}.weight_v"], transposed)
            g = _hifigan_gain(f"{conv}.weight_g", state_dict[f"{conv}.weight_g"], transposed)
            if g.size != v.shape[1 if transposed else 2]:
                raise ValueError(f"{conv}.weight_g: {g.size} gains for a weight {v.shape}")
        else:
            v = _hifigan_weight(f"{conv}.weight", state_dict[f"{conv}.weight"], transposed)
            axes = (0, 2) if transposed else (0, 1)
            g = np.sqrt(np.sum(np.square(v, dtype=np.float64), axis=axes, keepdims=True))
            g = g.astype(np.float32)
        if weight_norm:
            node["v"], node["g"] = v, g
        else:
            node["kernel"] = np.asarray(hifigan.fold_kernel(v, g), np.float32) if normed else v
    return {"params": params}


def hifigan_config(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """`Generator` keyword arguments of a reference generator state_dict.

    Widths, kernel sizes and the stage count come from the arrays; the upsampling rates are
    kernel / 2 and the ResBlock dilations (1, 3, 5) — what every HiFi-GAN V1/V2/V3 config uses
    (the state_dict does not record strides or dilations).
    """
    convs = _hifigan_convs(state_dict)
    stages, per_stage = _hifigan_layout(state_dict)

    def weight_shape(conv):
        key = f"{conv}.weight_v" if f"{conv}.weight_v" in state_dict else f"{conv}.weight"
        if key not in state_dict:
            raise ValueError(f"HiFi-GAN state_dict: no weight for {conv}")
        return np.shape(state_dict[key])

    kernels = [int(weight_shape(f"ups.{i}")[2]) for i in range(stages)]
    num_dilations = sum(1 for c in convs if c.startswith("resblocks.0.convs1."))
    return {
        "upsample_initial_channel": int(weight_shape("conv_pre")[0]),
        "upsample_rates": tuple(k // 2 for k in kernels),
        "upsample_kernel_sizes": tuple(kernels),
        "resblock_kernel_sizes": tuple(
            int(weight_shape(f"resblocks.{j}.convs1.0")[2]) for j in range(per_stage)
        ),
        "resblock_dilations": ((1, 3, 5)[:num_dilations],) * per_stage,
        "n_mels": int(weight_shape("conv_pre")[1]),
    }


def _check_hifigan(config: Mapping[str, Any], variables, weight_norm: bool) -> None:
    """Compares converted generator parameters with what `Generator(**config).init` creates."""
    from jdrum.models import hifigan

    model = hifigan.Generator(**config, weight_norm=weight_norm)
    mel = jax.ShapeDtypeStruct((1, model.n_mels, 2), jnp.float32)
    expected = jax.eval_shape(model.init, jax.random.key(0), mel)
    _check_shapes(f"HiFi-GAN variables for {config}", expected, variables)


def load_official_vocoder(
    path: str | os.PathLike, *, weight_norm: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reads the official vocoder file (`ckpt/vocoder/generator`: a dict with the single key
    `generator`; torch needed) or an `.npz` holding the state_dict under `generator/` or
    `param/` (the reference fixture's layout; no torch needed).

    Returns:
      (config, variables): `jdrum.models.hifigan.Generator(**config, weight_norm=weight_norm)`
      with `variables` reproduces the reference generator.
    """
    checkpoint = read_checkpoint(path)
    for key in ("generator", "param"):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            state_dict = checkpoint[key]
            break
    else:
        raise ValueError(
            f"{path}: no 'generator' (or 'param') entry; top level: {list(checkpoint)}"
        )
    variables = hifigan_variables(state_dict, weight_norm=weight_norm)
    config = hifigan_config(state_dict)
    _check_hifigan(config, variables, weight_norm)
    return config, variables


def convert_vocoder(path: str, out: str) -> None:
    """The official vocoder file as a jdrum run directory `out` (its `vocoder` stage layout:
    `jdrum.trainers.vocoder.load(out)` and `jdrum.vocode` read it)."""
    from configs import hifigan_v1
    from jdrum.trainers import vocoder as vocoder_trainer

    model_config, variables = load_official_vocoder(path, weight_norm=True)
    config = hifigan_v1.get_config()
    for key, value in model_config.items():
        config.model[key] = value
    vocoder_trainer.write_run(out, config, variables["params"])


# ------------------------------------------------------------------------- beat tracker


def da2_tracker_variables(path: str | os.PathLike):
    """The official DA2 tracker file (`RNNBeatProc.pth`: a bare state_dict of 202 entries) as
    `jdrum.beat.tracker.BeatTracker(peephole=False, head="da2")` variables of its "nodrum"
    head, the part JukeDrummer uses (REFERENCE §4.2). An `.npz` holding the state_dict, bare
    or under `param/` (the reference fixture's layout), works without torch."""
    from jdrum.beat import weights

    state_dict = read_checkpoint(path)
    state_dict = state_dict.get("param", state_dict)
    return weights.da2_nodrum_params(state_dict)


# ---------------------------------------------------------------------------- command line

# --exp N → (LM file stem, jdrum LM variant). The authors distribute exp1 and exp11.
OFFICIAL_EXPERIMENTS = {
    1: ("exp1", "seq2seq_low"),
    2: ("exp2", "seq2seq_nobeat"),
    11: ("exp11", "decoder_low"),
    12: ("exp12", "decoder_nobeat"),
}
_SUFFIXES = (".pkl", ".pth", ".pt", ".npz", "")


def _find(directory: pathlib.Path, *names: str) -> pathlib.Path:
    """The first of `names` (each tried with the checkpoint suffixes) under `directory`."""
    for name in names:
        for suffix in _SUFFIXES:
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return path
    raise FileNotFoundError(f"{directory}: none of {', '.join(names)} (.pkl/.pth/.npz)")


def convert_vqvae(path: str, stem: str, out: str) -> None:
    """An official VQ-VAE file (`vq1_target.pkl`: drums, `vq1_others.pkl`: drumless) as a
    jdrum run directory `out` (what `python -m jdrum.tokenize` and sampling read)."""
    from configs import vqvae as vqvae_configs
    from jdrum.trainers import vqvae as vqvae_trainer

    model_config, variables, stats = load_official_vqvae(path)
    config = vqvae_configs.get_config(stem, model_config["codebook_size"], None)
    for key in ("width", "latent", "down", "up", "commit_beta"):
        config.model[key] = model_config[key]
    vqvae_trainer.write_run(out, config, variables, stats)


def convert_lm(path: str, out: str, variant: str | None = None) -> None:
    """An official LM file (`exp1.pkl`, `exp11.pkl`, ...) as a jdrum LM run directory."""
    from jdrum.trainers import lm as lm_trainer

    lm, variables = load_official_lm(path)
    if variant is None:
        variant = ("seq2seq_" if lm.encoder else "decoder_") + {"none": "nobeat"}.get(
            lm.beat, lm.beat
        )
    lm_trainer.write_run(out, lm_trainer.config_from_lm(lm, variant), variables)


def convert_official(directory: str, exp: int, out: str) -> str:
    """The authors' files in `directory` as a complete run directory `out` for sampling.

    Reads `vq1_target` (drum VQ-VAE), `vq1_others` (drumless VQ-VAE), `exp<N>` (the LM),
    `vocoder/generator` (or `hifigan/generator`, `generator`) and `RNNBeatProc.pth` (DA2
    tracker), each as .pkl/.pth (torch) or .npz, and writes `vqvae_drums/`,
    `vqvae_drumless/`, `lm/`, `vocoder/`, and the tracker's "nodrum" head as
    `tracker_da2.npz` named in `tracker.json`.
    """
    from jdrum.beat import weights

    if exp not in OFFICIAL_EXPERIMENTS:
        raise ValueError(
            f"--exp {exp}: the official experiments are {sorted(OFFICIAL_EXPERIMENTS)}"
        )
    root, run = pathlib.Path(directory), pathlib.Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    lm_name, variant = OFFICIAL_EXPERIMENTS[exp]
    sources = {
        "drums": _find(root, "vq1_target"),
        "drumless": _find(root, "vq1_others"),
        "lm": _find(root, lm_name),
        "vocoder": _find(root, "vocoder/generator", "hifigan/generator", "generator"),
        "tracker": _find(root, "RNNBeatProc"),
    }
    for stem in ("drums", "drumless"):
        convert_vqvae(str(sources[stem]), stem, str(run / f"vqvae_{stem}"))
    convert_lm(str(sources["lm"]), str(run / "lm"), variant)
    convert_vocoder(str(sources["vocoder"]), str(run / "vocoder"))
    state_dict = read_checkpoint(sources["tracker"])
    state_dict = state_dict.get("param", state_dict)
    head = {k: np.asarray(v) for k, v in state_dict.items() if k.startswith(weights.DA2_PREFIX)}
    weights.da2_nodrum_params(head)  # fails here, not at sampling time, if the head is broken
    np.savez(run / "tracker_da2.npz", **head)
    with open(run / "tracker.json", "w") as f:
        json.dump({"tracker": "da2:tracker_da2.npz", "source": str(sources["tracker"])}, f)
    return str(run)


def main(argv):
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    values = flags.FLAGS
    if not values.out or sum(map(bool, (values.official, values.vqvae, values.lm))) != 1:
        raise app.UsageError(
            "give --out and one of --official DIR --exp N, --vqvae FILE --stem S, --lm FILE"
        )
    try:
        if values.official:
            convert_official(values.official, values.exp, values.out)
        elif values.vqvae:
            convert_vqvae(values.vqvae, values.stem, values.out)
        else:
            convert_lm(values.lm, values.out)
    except (ValueError, ImportError, OSError) as error:
        raise SystemExit(f"jdrum.convert: {error}") from None
    print(f"wrote {values.out}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("official", None, "Folder with the authors' files (see convert_official).")
    flags.DEFINE_integer("exp", 1, "Official experiment: 1, 2, 11 or 12 (with --official).")
    flags.DEFINE_string("vqvae", None, "One official VQ-VAE file (vq1_target.pkl, vq1_others.pkl).")
    flags.DEFINE_enum("stem", "drums", ["drums", "drumless"], "Which VQ-VAE the file holds.")
    flags.DEFINE_string("lm", None, "One official LM file (exp1.pkl, exp11.pkl).")
    flags.DEFINE_string("out", None, "Run directory to write, e.g. runs/official_exp1.")
    app.run(main)
