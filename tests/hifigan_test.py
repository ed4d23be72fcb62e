"""HiFi-GAN V1 generator and discriminators vs the reference fixture `hifigan_small.npz`."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrum import losses
from jdrum.convert import hifigan as convert
from jdrum.models import hifigan, layers

FIXTURE = (
    pathlib.Path(__file__).resolve().parents[2]
    / "shared"
    / "fixtures"
    / "reference"
    / "hifigan_small.npz"
)
ATOL = 1e-4


@pytest.fixture(scope="module")
def ref():
    if not FIXTURE.exists():
        pytest.skip(f"reference fixture missing: {FIXTURE} (the shared fixtures checkout)")
    with np.load(FIXTURE) as npz:
        return {key: npz[key] for key in npz.files}


def _state_dict(ref, prefix):
    return {k.removeprefix(prefix): v for k, v in ref.items() if k.startswith(prefix)}


def _count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("prefix", ["param/", "param_folded/"])
@pytest.mark.parametrize("weight_norm", [False, True])
def test_generator_matches_reference(ref, prefix, weight_norm):
    state_dict = _state_dict(ref, prefix)
    config = convert.hifigan_config(state_dict)
    assert config["upsample_initial_channel"] == 32
    variables = convert.hifigan_variables(state_dict, weight_norm=weight_norm)
    model = hifigan.Generator(**config, weight_norm=weight_norm)
    wave, state = jax.jit(lambda v, m: model.apply(v, m, mutable=["intermediates"]))(
        variables, ref["in/mel_log10"]
    )
    assert wave.shape == (1, 8192) and wave.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(wave), ref["out/wave"][:, 0], rtol=0, atol=ATOL)
    hooks = state["intermediates"]
    # Hooks (NTC here, NCT in the fixture) locate a mismatch layer by layer.
    for name, key in [("conv_pre_out", "conv_pre")] + [
        (f"ups_{i}_out", f"ups.{i}") for i in range(4)
    ]:
        np.testing.assert_allclose(
            np.asarray(hooks[name][0]).transpose(0, 2, 1),
            ref[f"out/hook/{key}"],
            rtol=1e-4,
            atol=ATOL,
            err_msg=name,
        )


def test_fold_weight_norm_gives_the_reference_folded_weights(ref):
    normed = convert.hifigan_variables(_state_dict(ref, "param/"), weight_norm=True)["params"]
    folded = convert.hifigan_variables(_state_dict(ref, "param_folded/"), weight_norm=False)
    # g is per output channel for a convolution, per input channel for a transposed one.
    assert normed["conv_pre"]["g"].shape == (1, 1, 32)
    assert normed["ups_0"]["g"].shape == (1, 32, 1) and normed["ups_0"]["v"].shape == (16, 32, 16)
    diffs = jax.tree.map(
        lambda a, b: float(np.max(np.abs(np.asarray(a) - b))),
        hifigan.fold_weight_norm(normed),
        folded["params"],
    )
    assert max(jax.tree.leaves(diffs)) < 1e-6


def test_load_official_vocoder_reads_the_npz_layout(ref):
    config, variables = convert.load_official_vocoder(FIXTURE)
    model = hifigan.Generator(**config)
    wave = model.apply(variables, ref["in/mel_log10"])
    np.testing.assert_allclose(np.asarray(wave), ref["out/wave"][:, 0], rtol=0, atol=ATOL)


def test_converter_lists_unknown_and_missing_keys(ref):
    state_dict = _state_dict(ref, "param_folded/")
    state_dict["ups.0.weight_extra"] = state_dict.pop("ups.0.weight")
    with pytest.raises(ValueError, match=r"unknown keys \['ups.0.weight_extra'\]; missing keys"):
        convert.hifigan_variables(state_dict, weight_norm=False)
    normed = _state_dict(ref, "param/")
    del normed["resblocks.3.convs1.1.weight_g"]
    with pytest.raises(ValueError, match=r"missing keys \['resblocks.3.convs1.1.weight_g'\]"):
        convert.hifigan_variables(normed, weight_norm=True)


@pytest.mark.parametrize("weight_norm,expected", [(False, 13_926_017), (True, 13_936_130)])
def test_paper_size_generator_parameter_count(weight_norm, expected):
    model = hifigan.Generator(weight_norm=weight_norm)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 80, 4)))
    assert _count(shapes) == expected


def test_paper_size_discriminators():
    model = hifigan.Discriminator()
    wave = jnp.zeros((2, 8192))
    (scores, fmaps), variables = jax.eval_shape(
        lambda k, x: model.init_with_output(k, x, train=True), jax.random.key(0), wave
    )
    # REFERENCE §8.3: MPD 5 × (8,218,433 + 2,721 gains); MSD 3 × 9,870,209 + 2 × 4,097 gains.
    assert _count(variables["params"]["mpd"]) == 41_105_770
    assert _count(variables["params"]["msd"]) == 29_618_821
    # MPD: (B, T'·p) with T' the rows after three stride-3 convolutions of ceil(8192 / p) rows.
    expected = [(2, 51 * 2), (2, 34 * 3), (2, 21 * 5), (2, 15 * 7), (2, 10 * 11)]
    # MSD: raw, pooled (L/2 + 1), pooled twice; overall stride 64.
    expected += [(2, 128), (2, 65), (2, 33)]
    assert [s.shape for s in scores] == expected
    assert [len(f) for f in fmaps] == [6] * 5 + [8] * 3
    assert fmaps[0][0].shape == (2, 2, 1366, 32)  # (B, p, rows, channels)
    assert fmaps[5][-2].shape == (2, 128, 1024)


def _torch_conv_transpose(x_TxI, w_IxOxK, bias, stride, padding):
    length, kernel = x_TxI.shape[0], w_IxOxK.shape[2]
    out = np.zeros(((length - 1) * stride + kernel, w_IxOxK.shape[1]))
    for t in range(length):
        for j in range(kernel):
            out[t * stride + j] += x_TxI[t] @ w_IxOxK[:, :, j]
    return out[padding : len(out) - padding] + bias


@pytest.mark.parametrize("kernel,stride", [(16, 8), (4, 2), (5, 1), (6, 2)])
def test_transposed_conv_is_pytorch_conv_transpose(kernel, stride):
    x_BxTxI = np.random.default_rng(0).normal(size=(2, 7, 3)).astype(np.float32)
    conv = layers.Conv(5, kernel, stride, transpose=True)
    variables = conv.init(jax.random.key(0), x_BxTxI)
    params = variables["params"]
    weight = np.asarray(params["kernel"]).transpose(1, 2, 0)  # torch (in, out, k)
    out = np.asarray(conv.apply(variables, x_BxTxI))
    assert out.shape == (2, 7 * stride, 5)
    for b in range(2):
        expected = _torch_conv_transpose(
            x_BxTxI[b], weight, np.asarray(params["bias"]), stride, (kernel - stride) // 2
        )
        np.testing.assert_allclose(out[b], expected, rtol=0, atol=1e-5)


def test_spectral_norm_power_iteration_converges_to_the_top_singular_value():
    conv = layers.Conv(6, 5, norm="spectral")
    x = jnp.ones((1, 9, 4))
    variables = conv.init(jax.random.key(0), x)
    kernel = np.asarray(variables["params"]["kernel"])
    w_OxN = kernel.transpose(2, 1, 0).reshape(6, -1)
    sigma = np.linalg.svd(w_OxN, compute_uv=False)[0]
    apply = jax.jit(lambda v: conv.apply(v, x, train=True, mutable=[hifigan.SPECTRAL]))
    for _ in range(30):
        _, updates = apply(variables)
        variables = {**variables, **updates}
    u, v = variables[hifigan.SPECTRAL]["u"], variables[hifigan.SPECTRAL]["v"]
    np.testing.assert_allclose(float(u @ w_OxN @ v), sigma, rtol=1e-3)
    # Without train the stored vectors are used and left alone.
    frozen = conv.apply(variables, x)
    direct = jax.lax.conv_general_dilated(
        x, kernel / float(u @ w_OxN @ v), (1,), [(2, 2)], dimension_numbers=("NWC", "WIO", "NWC")
    )
    np.testing.assert_allclose(
        np.asarray(frozen), np.asarray(direct) + np.asarray(variables["params"]["bias"]), atol=1e-5
    )


@pytest.mark.parametrize("frames", [1, 5, 37])
def test_generator_takes_any_length(frames):
    model = hifigan.Generator(
        upsample_initial_channel=16, resblock_kernel_sizes=(3,), resblock_dilations=((1,),)
    )
    mel = jnp.full((2, 80, frames), -3.0)
    variables = model.init(jax.random.key(0), mel)
    wave = model.apply(variables, mel)
    assert wave.shape == (2, frames * 256)
    assert np.isfinite(np.asarray(wave)).all()
    with pytest.raises(ValueError, match="upsample_initial_channel 8 is too small"):
        model.copy(upsample_initial_channel=8).init(jax.random.key(0), mel)


def test_bfloat16_compute_keeps_float32_params_and_output():
    kwargs = dict(
        upsample_initial_channel=16, resblock_kernel_sizes=(3,), resblock_dilations=((1,),)
    )
    mel = jnp.full((1, 80, 6), -3.0).at[:, :30].set(-1.0)
    variables = hifigan.Generator(**kwargs, weight_norm=True).init(jax.random.key(0), mel)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
    wave32 = hifigan.Generator(**kwargs, weight_norm=True).apply(variables, mel)
    wave16 = hifigan.Generator(**kwargs, weight_norm=True, dtype=jnp.bfloat16).apply(variables, mel)
    assert wave16.dtype == jnp.float32
    scale = float(jnp.max(jnp.abs(wave32)))
    assert float(jnp.max(jnp.abs(wave16 - wave32))) < 0.05 * scale


def test_losses():
    real = [jnp.ones((2, 3)), jnp.zeros((2, 5))]
    fake = [jnp.zeros((2, 3)), jnp.full((2, 5), 0.5)]
    # Σ mean((1 − r)²) + mean(f²) = (0 + 0) + (1 + 0.25)
    assert float(losses.discriminator_loss(real, fake)) == pytest.approx(1.25)
    assert float(losses.generator_adversarial_loss(fake)) == pytest.approx(1.0 + 0.25)
    fmaps_real = [[jnp.ones((2, 4)), jnp.zeros((2, 2))]]
    fmaps_fake = [[jnp.zeros((2, 4)), jnp.full((2, 2), -2.0)]]
    assert float(losses.feature_matching_loss(fmaps_real, fmaps_fake)) == pytest.approx(3.0)
    wave = 0.1 * jax.random.normal(jax.random.key(0), (2, 4096))
    mel = losses.loss_mel(wave)
    assert mel.shape == (2, 80, 16)
    assert float(mel.min()) >= np.log(1e-5) - 1e-6
    assert float(losses.mel_l1(wave, wave)) == 0.0
    # Silence: the 1e-9 under the root keeps the gradient finite.
    grad = jax.grad(lambda w: losses.mel_l1(w, wave))(jnp.zeros((2, 4096)))
    assert np.isfinite(np.asarray(grad)).all()
