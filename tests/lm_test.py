"""The LM (`jdrum.models.transformer`, `attention`) vs the reference fixtures, through the
converter; factorised vs dense attention; causality; paper-size parameter counts."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import lm as lm_configs
from jdrum import runs
from jdrum.beat import conditions
from jdrum.convert import lm as convert
from jdrum.inference import sampling
from jdrum.models import attention, transformer

ATOL, LOSS_ATOL = 1e-4, 1e-5
FIXTURES = {"lm_small.npz": {}, "lm9_small.npz": {"name": "lm9"}, "lm2_small.npz": {}}


def _converted(ref, hps):
    state_dict = {k[len("param/") :]: v for k, v in ref.items() if k.startswith("param/")}
    config, variables = convert.lm_from_checkpoint({"model": state_dict, "hps": hps})
    return transformer.DrumLM(config), variables


def _inputs(ref, n_ctx):
    drumless = ref.get("in/drumless_tokens")
    beat = None
    if "in/beat_low" in ref:
        frames = conditions.low_frame_indices(ref["in/beat_low"].shape[1], n_ctx)
        np.testing.assert_array_equal(frames, ref["out/beat_resample_index"])
        beat = ref["in/beat_low"][:, frames]
        np.testing.assert_allclose(beat, ref["out/beat_low_resampled"], atol=0)
    return drumless, beat


@pytest.mark.parametrize("name", list(FIXTURES))
def test_teacher_forced_parity(load_reference, name):
    ref = load_reference(name)
    model, variables = _converted(ref, FIXTURES[name])
    drumless, beat = _inputs(ref, model.config.n_ctx)
    drum = ref["in/drum_tokens"]
    logits = model.apply(variables, drum, drumless, beat)
    np.testing.assert_allclose(logits, ref["out/logits"], atol=ATOL)
    loss = transformer.loss_bits(logits, jnp.asarray(drum))
    np.testing.assert_allclose(loss, ref["out/loss_bits"], atol=LOSS_ATOL)
    cond = model.apply(variables, beat, drum.shape[1], method=transformer.DrumLM.condition)
    if "out/cond" in ref:
        np.testing.assert_allclose(cond, ref["out/cond"], atol=ATOL)
    else:
        assert cond is None
    if "out/encoder_kv" in ref:
        encoder_kv = model.apply(variables, drumless, cond, method=transformer.DrumLM.encode)
        np.testing.assert_allclose(encoder_kv, ref["out/encoder_kv"], atol=ATOL)
    else:
        assert not model.config.encoder
    tf = model.apply(variables, ref["out/sample_tokens"], drumless, beat)
    np.testing.assert_allclose(tf, ref["out/sample_teacher_forced_logits"], atol=ATOL)


@pytest.mark.parametrize("level,field", [("mid", "onset_emb"), ("high", "beat_emb")])
def test_mid_and_high_conditioners(load_reference, level, field):
    ref = load_reference("lm_cond_mid_high.npz")
    table = ref[f"{level}/param/{field}.weight"]
    config = transformer.LMConfig(
        width=64, n_ctx=256, block_len=16, prior_layers=1, prime_layers=1, beat=level
    )
    model = transformer.DrumLM(config)
    beat = ref[f"{level}/in/beat_{level}"]
    tokens = np.zeros(beat.shape, np.int32)
    variables = model.init(jax.random.key(0), tokens, tokens, beat)
    variables["params"]["beat_embed"]["embedding"] = table
    cond = model.apply(variables, beat, 256, method=transformer.DrumLM.condition)
    np.testing.assert_allclose(cond, ref[f"{level}/out/cond"], atol=ATOL)


def test_top_p_filter_matches_reference(load_reference):
    ref = load_reference("lm_small.npz")
    out = np.asarray(sampling.filter_logits(ref["in/filter_logits_in"], 0, 0.8))
    expected = ref["out/filter_logits_out"]
    removed = np.isneginf(expected)
    np.testing.assert_array_equal(np.isneginf(out), removed)
    np.testing.assert_allclose(out[~removed], expected[~removed], atol=1e-6)
    assert 0 < removed.mean() < 1


def test_top_k_keeps_k_tokens():
    logits = jax.random.normal(jax.random.key(0), (4, 32))
    out = sampling.filter_logits(logits, top_k=5, top_p=1.0)
    assert np.all(np.isfinite(out).sum(-1) == 5)


def _small(**overrides):
    base = dict(
        vocab_size=8, prime_vocab_size=16, n_ctx=32, width=16, heads=2, block_len=8,
        prior_layers=10, prime_layers=3, emb_dropout=0.0, attn_dropout=0.0, resid_dropout=0.0,
    )  # fmt: skip
    return transformer.LMConfig(**{**base, **overrides})


def _init(config, seed=0):
    model = transformer.DrumLM(config)
    key = jax.random.key(seed)
    drum = jax.random.randint(key, (2, config.n_ctx), 0, config.vocab_size)
    drumless = jax.random.randint(key, (2, config.n_ctx), 0, config.prime_vocab_size)
    beat = {
        "none": None,
        "low": jax.random.normal(key, (2, config.n_ctx, config.beat_features)),
        "mid": jax.random.randint(key, (2, config.n_ctx), 0, 2),
        "high": jax.random.randint(key, (2, config.n_ctx), 0, 5),
    }[config.beat]
    variables = model.init(key, drum, drumless if config.encoder else None, beat)
    # Cross-attention layers start as the identity; perturb every parameter so they act.
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    leaves = [x + 0.05 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return model, jax.tree.unflatten(tree, leaves), drum, drumless, beat


@pytest.mark.parametrize("kind", [attention.BLOCK, attention.TRANSPOSE, attention.PREVIOUS])
@pytest.mark.parametrize("causal", [True, False])
def test_factorised_attention_equals_dense_under_its_mask(kind, causal):
    n, length, block, width, heads = 2, 32, 8, 12, 3
    q, k, v = jax.random.normal(jax.random.key(kind), (3, n, length, width))
    out = attention.attend(kind, q, k, v, heads=heads, block_len=block, causal=causal)
    mask = attention.dense_mask(kind, length, block, causal)
    qh, kh, vh = (attention.split_heads(x, heads) for x in (q, k, v))
    w = attention.attention_weights(qh, kh, mask[None, None])
    dense = attention.merge_heads(jnp.einsum("nhqt,nhtk->nhqk", w, vh))
    rows = mask.any(axis=1)  # PREVIOUS: block 0 has no keys and outputs 0
    np.testing.assert_allclose(out[:, rows], dense[:, rows], atol=1e-5)
    np.testing.assert_allclose(out[:, ~rows], 0.0, atol=1e-6)


@pytest.mark.parametrize("kind", [attention.DENSE, attention.BLOCK, attention.TRANSPOSE,
                                  attention.PREVIOUS])  # fmt: skip
def test_decode_step_equals_teacher_forced_row(kind):
    n, length, block, width, heads = 2, 32, 8, 12, 3
    q, k, v = jax.random.normal(jax.random.key(10 + kind), (3, n, length, width))
    full = attention.attend(kind, q, k, v, heads=heads, block_len=block, causal=True)
    for t in (0, 5, 8, 17, 31):
        row = attention.attend_step(
            kind, q[:, t : t + 1], k, v, t, heads=heads, block_len=block,
            k_new=k[:, t : t + 1], v_new=v[:, t : t + 1],
        )  # fmt: skip
        np.testing.assert_allclose(row[:, 0], full[:, t], atol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [dict(), dict(encoder=False, attn_order=2, beat="none"), dict(prior_layers=4, attn_order=2)],
)
def test_changing_token_t_never_changes_earlier_logits(overrides):
    config = _small(**overrides)
    model, variables, drum, drumless, beat = _init(config)
    apply = jax.jit(model.apply)
    base = apply(variables, drum, drumless, beat)
    for t in (0, 7, 8, 20, 31):
        changed = drum.at[:, t].set((drum[:, t] + 1) % config.vocab_size)
        logits = apply(variables, changed, drumless, beat)
        np.testing.assert_array_equal(logits[:, : t + 1], base[:, : t + 1])
        if t < config.n_ctx - 1:
            assert np.abs(logits[:, t + 1 :] - base[:, t + 1 :]).max() > 1e-4


def test_cached_sampling_logits_equal_teacher_forced(load_reference):
    ref = load_reference("lm_small.npz")
    model, variables = _converted(ref, {})
    drumless, beat = _inputs(ref, model.config.n_ctx)
    primed = np.zeros_like(ref["in/drum_tokens"])
    tokens, steps = sampling.sample_window(
        model, variables, primed, 0, drumless, beat, key=jax.random.key(0)
    )
    np.testing.assert_allclose(steps, model.apply(variables, tokens, drumless, beat), atol=1e-5)
    # A continuation: the first 100 tokens are kept, the rest sampled from the cache.
    again, steps = sampling.sample_window(
        model, variables, tokens, 100, drumless, beat, key=jax.random.key(1)
    )
    np.testing.assert_array_equal(again[:, :100], tokens[:, :100])
    assert np.mean(np.asarray(again[:, 100:]) != np.asarray(tokens[:, 100:])) > 0.2
    tf = model.apply(variables, again, drumless, beat)
    np.testing.assert_allclose(steps[:, 100:], tf[:, 100:], atol=1e-5)
    # The reference's own cached logits on its sampled sequence, through our teacher forcing.
    tf = model.apply(variables, ref["out/sample_tokens"], drumless, beat)
    np.testing.assert_allclose(tf, ref["out/sample_step_logits"], atol=ATOL)


@pytest.mark.parametrize("overrides", [dict(), dict(encoder=False, attn_order=2, beat="high")])
def test_scanned_tail_layers_decode_like_teacher_forcing(overrides):
    config = _small(prior_layers=5, **overrides)  # pattern 1,2,3 → one scanned group + a tail
    if config.attn_order == 8:
        config = dataclasses.replace(config, prior_layers=12)  # one group of 10 + a tail of 2
    model, variables, _, drumless, beat = _init(config)
    tokens, steps = sampling.sample_window(
        model, variables, jnp.zeros((2, config.n_ctx), jnp.int32), 0, drumless, beat,
        key=jax.random.key(2),
    )  # fmt: skip
    tf = jax.jit(model.apply)(variables, tokens, drumless, beat)
    np.testing.assert_allclose(steps, tf, atol=1e-5)


# REFERENCE §8.2 at paper size. Decoder-only variants count the parameters they use (the
# reference also instantiates an unused drumless encoder: 24,801,664 / 24,775,552).
PAPER_COUNTS = {
    "seq2seq_low": 24_801_664,
    "seq2seq_nobeat": 24_775_552,
    "seq2seq_high": 24_777_088,
    "seq2seq_mid": 24_776_576,
    "decoder_low": 16_375_296,
    "decoder_nobeat": 16_349_184,
}


@pytest.mark.parametrize("variant", list(PAPER_COUNTS))
def test_paper_size_parameter_counts(variant):
    config = runs.lm_config(lm_configs.get_config(variant, None))
    assert transformer.param_count(config) == PAPER_COUNTS[variant]


def test_bfloat16_compute_is_close_to_float32():
    config = _small()
    model, variables, drum, drumless, beat = _init(config)
    full = jax.jit(model.apply)(variables, drum, drumless, beat)
    half = transformer.DrumLM(dataclasses.replace(config, dtype="bfloat16"))
    logits = jax.jit(half.apply)(variables, drum, drumless, beat)
    assert logits.dtype == jnp.float32
    assert np.abs(np.asarray(logits) - np.asarray(full)).max() < 0.1 * np.abs(full).max()


def test_remat_keeps_the_loss_and_gradients():
    config = _small()
    model, variables, drum, drumless, beat = _init(config)
    remat = transformer.DrumLM(dataclasses.replace(config, remat_policy="full"))

    def loss(m, params):
        logits = m.apply({"params": params}, drum, drumless, beat)
        return transformer.loss_bits(logits, drum)

    a = jax.jit(jax.value_and_grad(lambda p: loss(model, p)))(variables["params"])
    b = jax.jit(jax.value_and_grad(lambda p: loss(remat, p)))(variables["params"])
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=1e-5), a, b)


def test_converter_names_unknown_and_missing_keys(load_reference):
    ref = load_reference("lm_small.npz")
    state_dict = {k[len("param/") :]: v for k, v in ref.items() if k.startswith("param/")}
    broken = dict(state_dict)
    broken["prior.transformer._attn_mods.0.attn.extra.w"] = broken.pop(
        "prior.transformer._attn_mods.0.attn.c_attn.w"
    )
    with pytest.raises(ValueError, match=r"unknown keys .*extra.*missing keys .*c_attn\.w"):
        convert.lm_from_checkpoint({"model": broken})
    untied = dict(state_dict, **{"prior.x_out.weight": state_dict["prior.x_emb.weight"] + 1})
    with pytest.raises(ValueError, match="untied"):
        convert.lm_from_checkpoint({"model": untied})


def test_mismatched_beat_length_is_a_clear_error():
    model, variables, drum, drumless, beat = _init(_small())
    with pytest.raises(ValueError, match="beat conditions have 16 tokens, codes have 32"):
        model.apply(variables, drum, drumless, beat[:, :16])


def test_a_dropped_condition_is_ignored_and_a_kept_one_is_not():
    """keep_beat / keep_drumless = 0 make an example's logits independent of that condition
    (what guided sampling's unconditional half relies on); 1 changes nothing."""
    model, variables, drum, drumless, beat = _init(_small())
    other_beat, other_drumless = beat[::-1] + 1.0, (drumless[::-1] + 5) % 16
    keep, drop = jnp.ones(2), jnp.zeros(2)
    plain = model.apply(variables, drum, drumless, beat)
    np.testing.assert_array_equal(
        model.apply(variables, drum, drumless, beat, keep_beat=keep, keep_drumless=keep), plain
    )
    for kwargs, changed in (
        ({"keep_beat": drop}, (drumless, other_beat)),
        ({"keep_drumless": drop}, (other_drumless, beat)),
    ):
        a = model.apply(variables, drum, drumless, beat, **kwargs)
        b = model.apply(variables, drum, *changed, **kwargs)
        np.testing.assert_array_equal(a, b)
        assert np.abs(model.apply(variables, drum, *changed) - plain).max() > 1e-5
    mixed = jnp.array([1.0, 0.0])  # per example: the first keeps its beat, the second not
    a = model.apply(variables, drum, drumless, beat, keep_beat=mixed)
    np.testing.assert_array_equal(a[0], plain[0])
    assert np.abs(a[1] - plain[1]).max() > 1e-3
