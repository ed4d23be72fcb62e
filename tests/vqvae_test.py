"""Mel VQ-VAE and EMA quantizer vs the reference fixture `vqvae_small.npz` (width 64)."""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrum.convert import vqvae as convert
from jdrum.models import layers, quantizer, vqvae

FIXTURE = (
    pathlib.Path(__file__).resolve().parents[2]
    / "shared"
    / "fixtures"
    / "reference"
    / "vqvae_small.npz"
)
ATOL = 1e-4
LOSS_ATOL = 1e-5
CODEBOOK_SIZE, LATENT = 32, 64


@pytest.fixture(scope="module")
def ref():
    if not FIXTURE.exists():
        pytest.fail(
            f"reference fixture missing: {FIXTURE} (the shared fixtures checkout is needed)"
        )
    with np.load(FIXTURE) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def state_dict(ref):
    return {k.removeprefix("param/"): v for k, v in ref.items() if k.startswith("param/")}


@pytest.fixture(scope="module")
def converted(ref, state_dict):
    checkpoint = {"model": state_dict, "mean": ref["ckpt/mean"], "std": ref["ckpt/std"]}
    config, variables, stats = convert.vqvae_from_checkpoint(checkpoint)
    return vqvae.VQVAE(**config), variables, stats


@pytest.fixture(scope="module")
def forward(ref, converted):
    """The train=False forward on the fixture input, with the sown block outputs."""
    model, variables, _ = converted
    apply = jax.jit(functools.partial(model.apply, train=False, mutable=["intermediates"]))
    (recon, aux), state = apply(variables, ref["in/mel_normalized"])
    return recon, aux, state["intermediates"]


def _flat_ntc(x_BxCxT):
    return np.asarray(x_BxCxT).transpose(0, 2, 1).reshape(-1, x_BxCxT.shape[1])


def _close(actual, expected, atol=ATOL, err_msg=""):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=0, atol=atol, err_msg=err_msg)


# ------------------------------------------------------------------------------ layers


@pytest.mark.parametrize("length,scale", [(8, 0.5), (9, 0.5), (16, 0.25), (5, 2), (3, 4), (7, 1)])
def test_resample_nearest_has_pytorch_semantics(length, scale):
    x_BxTxC = jnp.arange(length, dtype=jnp.float32).reshape(1, length, 1)
    out = np.asarray(layers.resample_nearest(x_BxTxC, scale))[0, :, 0]
    expected = np.floor(np.arange(int(np.floor(length * scale))) / scale)
    np.testing.assert_array_equal(out, expected)


def test_conv1d_uses_pytorch_layout_and_padding():
    rng = np.random.default_rng(0)
    x_BxTxI = rng.normal(size=(2, 7, 8)).astype(np.float32)
    weight_OxIxK = rng.normal(size=(4, 2, 3)).astype(np.float32)  # groups 4: 8 -> 4 channels
    bias_O = rng.normal(size=4).astype(np.float32)
    conv = layers.Conv(4, 3, groups=4)
    params = {"params": {"kernel": weight_OxIxK.transpose(2, 1, 0), "bias": bias_O}}
    y = np.asarray(conv.apply(params, x_BxTxI))
    padded = np.pad(x_BxTxI, ((0, 0), (1, 1), (0, 0)))
    expected = np.zeros((2, 7, 4), np.float64) + bias_O
    for o in range(4):
        for i in range(2):
            for k in range(3):
                expected[:, :, o] += weight_OxIxK[o, i, k] * padded[:, k : k + 7, 2 * o + i]
    _close(y, expected, atol=1e-5)


# ------------------------------------------------------------------------------ sizes


def test_paper_size_parameter_counts():
    model = vqvae.VQVAE(codebook_size=1024)
    init = functools.partial(model.init, train=False)
    shapes = jax.eval_shape(init, jax.random.key(0), jnp.zeros((1, 80, 16), jnp.float32))
    counts = {name: sum(x.size for x in jax.tree.leaves(t)) for name, t in shapes["params"].items()}
    assert counts == {"encoder": 4_950_720, "decoder": 4_999_920}
    assert sum(counts.values()) == 9_950_640
    codebook = shapes[quantizer.COLLECTION]["quantizer"]
    assert codebook["k"].shape == codebook["k_sum"].shape == (1024, 64)
    assert codebook["k_elem"].shape == (1024,) and codebook["initialised"].shape == ()


def test_clip_round_trip_shapes():
    model = vqvae.VQVAE(codebook_size=32, width=16)
    mel = jax.ShapeDtypeStruct((2, 80, 4096), jnp.float32)
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), mel)
    tokens = jax.eval_shape(functools.partial(model.apply, method=model.encode), variables, mel)
    assert tokens.shape == (2, 1024) and tokens.dtype == jnp.int32
    decoded = jax.eval_shape(functools.partial(model.apply, method=model.decode), variables, tokens)
    assert decoded.shape == (2, 80, 4096)


# ------------------------------------------------------------------------------ parity


def test_normalisation_matches_reference(ref, converted):
    _close(converted[2].normalise(ref["in/mel_log10"]), ref["in/mel_normalized"], atol=1e-6)


def test_encoder_latents_and_tokens(ref, converted):
    model, variables, _ = converted
    latents = model.apply(variables, ref["in/mel_normalized"], method=model.latents)
    _close(latents, ref["out/encoder_latents"])
    tokens = model.apply(variables, ref["in/mel_normalized"], method=model.encode)
    np.testing.assert_array_equal(tokens, ref["out/tokens"])


def test_decode_tokens(ref, converted):
    model, variables, stats = converted
    decoded = model.apply(variables, ref["out/tokens"], method=model.decode)
    _close(decoded, ref["out/decoded_mel_from_tokens"])
    _close(stats.denormalise(decoded), ref["out/decoded_mel_from_tokens_denorm"])


def test_forward_outputs_and_losses(ref, forward):
    recon, aux, _ = forward
    _close(recon, ref["out/decoded_mel_forward"])
    np.testing.assert_array_equal(aux["tokens"], ref["out/tokens"])
    for name, ref_name in [
        ("commit_loss", "commit_loss"),
        ("recon_loss", "recon_mse"),
        ("loss", "total_loss"),
        ("prenorm", "metric_pn"),
        ("entropy", "metric_entropy"),
    ]:
        _close(aux[name], ref[f"out/{ref_name}"], atol=LOSS_ATOL, err_msg=name)
    np.testing.assert_allclose(aux["fit"], ref["out/metric_fit"], rtol=1e-6)
    assert aux["used_curr"] == ref["out/metric_used_curr"]


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_block_outputs_match_reference_hooks(ref, forward, side):
    sown = forward[2][side]
    names = ["block0", "head0"] + [f"{kind}_{i}" for i in range(2) for kind in ("blocks", "heads")]
    for name in names:
        (value,) = sown[f"{name}_out"]
        hook = f"out/hook/{side}.{name.replace('_', '.')}"
        _close(np.asarray(value).transpose(0, 2, 1), ref[hook], err_msg=hook)


def test_straight_through_decoder_input(ref, converted):
    model, variables, _ = converted
    x_NxD = _flat_ntc(ref["out/encoder_latents"])
    bound = model.bind(variables).quantizer
    x_st_NxD, codes_N, commit_loss, _ = bound(jnp.asarray(x_NxD), train=False)
    _close(x_st_NxD, _flat_ntc(ref["out/decoder_input_straight_through"]), atol=1e-6)
    _close(x_st_NxD, _flat_ntc(ref["out/dequantised"]), atol=1e-6)
    np.testing.assert_array_equal(codes_N, ref["out/tokens"].reshape(-1))
    _close(commit_loss, ref["out/commit_loss"], atol=LOSS_ATOL)


# ------------------------------------------------------------------------------ EMA codebook


def test_lazy_init_with_recorded_permutation(ref, state_dict, converted):
    model, variables, _ = converted
    latents = model.apply(variables, ref["in/init_mel_normalized"], method=model.latents)
    _close(_flat_ntc(latents), ref["in/init_encoder_latents_flat"])
    state = quantizer.lazy_init(
        jnp.asarray(ref["in/init_encoder_latents_flat"]),
        CODEBOOK_SIZE,
        jax.random.key(0),
        jnp.asarray(ref["in/init_randperm"]),
    )
    np.testing.assert_array_equal(state.k, state_dict["vq.k"])
    np.testing.assert_array_equal(state.k_sum, ref["in/ema_k_sum_before"])
    np.testing.assert_array_equal(state.k_elem, ref["in/ema_k_elem_before"])


def test_lazy_init_tiles_small_batches():
    x_NxD = jax.random.normal(jax.random.key(1), (5, LATENT))
    assert quantizer.tiled_rows(5, CODEBOOK_SIZE) == 35
    k_KxD = quantizer.lazy_init(x_NxD, CODEBOOK_SIZE, jax.random.key(2)).k
    assert k_KxD.shape == (CODEBOOK_SIZE, LATENT)
    distance_KxN = np.linalg.norm(np.asarray(k_KxD)[:, None] - np.asarray(x_NxD)[None], axis=-1)
    noise_norm = 0.01  # = std·√D: tiling noise has std 0.01/√D per element
    assert np.all(distance_KxN.min(-1) < 2 * noise_norm)
    assert np.all(distance_KxN.min(-1) > 0.1 * noise_norm)  # every row got its own noise


def test_ema_update_with_recorded_permutation(ref, state_dict):
    state = quantizer.Codebook(
        k=jnp.asarray(state_dict["vq.k"]),
        k_sum=jnp.asarray(ref["in/ema_k_sum_before"]),
        k_elem=jnp.asarray(ref["in/ema_k_elem_before"]),
    )
    new, metrics = quantizer.ema_update(
        state,
        jnp.asarray(_flat_ntc(ref["out/encoder_latents"])),
        jnp.asarray(ref["out/tokens"].reshape(-1)),
        jax.random.key(0),
        jnp.asarray(ref["in/ema_randperm"]),
    )
    _close(new.k_sum, ref["out/ema_k_sum_after"], atol=1e-6)
    np.testing.assert_array_equal(new.k_elem, ref["out/ema_k_elem_after"])
    _close(new.k, ref["out/ema_k_after"], atol=1e-6)
    np.testing.assert_array_equal(new.k_elem >= 1.0, ref["out/ema_usage_after"].astype(bool))
    assert metrics["usage"] == ref["out/metric_usage"] == 26
    assert metrics["restarted"] == CODEBOOK_SIZE - 26
    assert metrics["used_curr"] == ref["out/metric_used_curr"]
    for name in ("entropy", "dk"):
        _close(metrics[name], ref[f"out/metric_{name}"], atol=LOSS_ATOL, err_msg=name)


def test_train_step_updates_codebook_like_reference(ref, converted):
    model, variables, _ = converted
    (_, aux), updates = model.apply(
        variables,
        ref["in/mel_normalized"],
        train=True,
        mutable=[quantizer.COLLECTION],
        rngs={quantizer.COLLECTION: jax.random.key(3)},
    )
    np.testing.assert_array_equal(aux["tokens"], ref["out/tokens"])  # the pre-update codebook
    _close(aux["commit_loss"], ref["out/commit_loss"], atol=LOSS_ATOL)
    codebook = updates[quantizer.COLLECTION]["quantizer"]
    _close(codebook["k_sum"], ref["out/ema_k_sum_after"], atol=1e-5)
    np.testing.assert_array_equal(codebook["k_elem"], ref["out/ema_k_elem_after"])
    used = ref["out/ema_usage_after"].astype(bool)
    _close(codebook["k"][used], ref["out/ema_k_after"][used], atol=1e-5)
    # Dead codes restart from distinct rows of the current batch (a fresh random permutation).
    x_NxD = _flat_ntc(ref["out/encoder_latents"])
    dead_KxD = np.asarray(codebook["k"])[~used]
    distance_KxN = np.linalg.norm(dead_KxD[:, None] - x_NxD[None], axis=-1)
    assert np.all(distance_KxN.min(-1) < 1e-4)
    assert len(set(distance_KxN.argmin(-1))) == len(dead_KxD)
    assert bool(codebook["initialised"])
    assert aux["usage"] == 26 and aux["restarted"] == 6


def test_first_train_step_initialises_codebook_from_batch(ref, converted):
    model, variables, _ = converted
    fresh = model.init(jax.random.key(0), ref["in/mel_normalized"], train=True)
    assert not bool(fresh[quantizer.COLLECTION]["quantizer"]["initialised"])  # init never updates
    fresh = {"params": variables["params"], quantizer.COLLECTION: fresh[quantizer.COLLECTION]}
    (_, aux), updates = model.apply(
        fresh,
        ref["in/mel_normalized"],
        train=True,
        mutable=[quantizer.COLLECTION],
        rngs={quantizer.COLLECTION: jax.random.key(4)},
    )
    codebook = updates[quantizer.COLLECTION]["quantizer"]
    assert bool(codebook["initialised"])
    # Undo the EMA step to recover the initial codebook: K distinct rows of the batch.
    x_NxD = _flat_ntc(ref["out/encoder_latents"])
    counts_K = np.bincount(np.asarray(aux["tokens"]).reshape(-1), minlength=CODEBOOK_SIZE)
    np.testing.assert_allclose(codebook["k_elem"], 0.99 + 0.01 * counts_K, rtol=1e-6)
    sums_KxD = np.zeros((CODEBOOK_SIZE, LATENT))
    np.add.at(sums_KxD, np.asarray(aux["tokens"]).reshape(-1), x_NxD)
    initial_KxD = (np.asarray(codebook["k_sum"]) - 0.01 * sums_KxD) / 0.99
    distance_KxN = np.linalg.norm(initial_KxD[:, None] - x_NxD[None], axis=-1)
    assert np.all(distance_KxN.min(-1) < 1e-3)
    assert len(set(distance_KxN.argmin(-1))) == CODEBOOK_SIZE
    assert float(aux["fit"]) < float(ref["out/metric_fit"])  # codes sit on batch vectors


def test_eval_never_changes_codebook(ref, converted):
    model, variables, _ = converted
    (_, aux), updates = model.apply(
        variables, ref["in/mel_normalized"], train=False, mutable=[quantizer.COLLECTION]
    )
    jax.tree.map(
        np.testing.assert_array_equal,
        updates[quantizer.COLLECTION],
        variables[quantizer.COLLECTION],
    )
    assert aux["restarted"] == 0 and aux["dk"] == 0 and aux["usage"] == CODEBOOK_SIZE


def test_gradients_pass_straight_through(ref, converted):
    model, variables, _ = converted

    def loss_fn(params):
        (_, aux), _ = model.apply(
            {**variables, "params": params},
            ref["in/mel_normalized"],
            train=True,
            mutable=[quantizer.COLLECTION],
            rngs={quantizer.COLLECTION: jax.random.key(5)},
        )
        return aux["loss"]

    grads = jax.jit(jax.grad(loss_fn))(variables["params"])
    assert set(grads) == {"encoder", "decoder"}
    for side in ("encoder", "decoder"):
        norm = np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(grads[side])))
        assert np.isfinite(norm) and norm > 0, side


# ------------------------------------------------------------------------------ bfloat16


def test_bfloat16_compute_is_close_to_float32(ref, converted, forward):
    """dtype=bfloat16: same float32 parameters, float32 outputs and losses, close results."""
    model, variables, _ = converted
    bf16 = model.clone(dtype=jnp.bfloat16)
    mel = ref["in/mel_normalized"]
    init = jax.eval_shape(functools.partial(bf16.init, train=False), jax.random.key(0), mel)
    assert {x.dtype for x in jax.tree.leaves(init["params"])} == {jnp.dtype(jnp.float32)}
    recon, aux = jax.jit(functools.partial(bf16.apply, train=False))(variables, mel)
    recon32, aux32, _ = forward
    assert recon.dtype == aux["loss"].dtype == jnp.float32
    latents = bf16.apply(variables, mel, method=bf16.latents)
    latents32 = model.apply(variables, mel, method=model.latents)
    assert latents.dtype == jnp.float32
    assert np.mean(np.abs(latents - latents32)) < 0.02 * np.mean(np.abs(latents32))
    assert np.mean(np.asarray(aux["tokens"]) == np.asarray(aux32["tokens"])) > 0.95
    assert np.mean(np.abs(recon - recon32)) < 0.05 * np.mean(np.abs(recon32))
    np.testing.assert_allclose(aux["loss"], aux32["loss"], rtol=0.02)

    def grads(m):
        def loss_fn(params):
            (_, aux), _ = m.apply(
                {"params": params, quantizer.COLLECTION: variables[quantizer.COLLECTION]},
                mel,
                train=True,
                mutable=[quantizer.COLLECTION],
                rngs={quantizer.COLLECTION: jax.random.key(0)},
            )
            return aux["loss"]

        return jax.tree.leaves(jax.jit(jax.grad(loss_fn))(variables["params"]))

    g, g32 = grads(bf16), grads(model)
    assert {x.dtype for x in g} == {jnp.dtype(jnp.float32)}
    error = sum(float(jnp.sum((a - b) ** 2)) for a, b in zip(g, g32, strict=True))
    assert (error / sum(float(jnp.sum(b**2)) for b in g32)) ** 0.5 < 0.1
