"""`jdrum.inference.sampling`: window plans, songs of any length, overlap agreement, errors."""

import jax
import numpy as np
import pytest

from jdrum.beat import conditions
from jdrum.inference import sampling
from jdrum.models import transformer

CONFIG = transformer.LMConfig(
    vocab_size=8, prime_vocab_size=16, n_ctx=64, width=16, block_len=8, prior_layers=10,
    prime_layers=3, emb_dropout=0.0, attn_dropout=0.0, resid_dropout=0.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def lm():
    model = transformer.DrumLM(CONFIG)
    tokens = np.zeros((1, CONFIG.n_ctx), np.int32)
    variables = model.init(jax.random.key(0), tokens, tokens, np.zeros((1, CONFIG.n_ctx, 50)))
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    leaves = [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return model, jax.tree.unflatten(tree, leaves)


def _song(num_tokens, seed=0):
    rng = np.random.default_rng(seed)
    drumless = rng.integers(0, CONFIG.prime_vocab_size, num_tokens)
    return drumless, rng.standard_normal((num_tokens, 50)).astype(np.float32)


def test_window_plan_covers_the_song_with_the_overlap():
    assert sampling.window_plan(64, 64, 32) == [(0, 0)]
    assert sampling.window_plan(10, 64, 32) == [(0, 0)]
    assert sampling.window_plan(100, 64, 32) == [(0, 0), (32, 32), (36, 60)]
    for n in (65, 200, 1000):
        plan = sampling.window_plan(n, 64, 16)
        assert plan[-1][0] + 64 == n
        for (start, _), (nxt, primed) in zip(plan, plan[1:], strict=False):
            assert primed == start + 64 - nxt >= 16
    with pytest.raises(ValueError, match="overlap"):
        sampling.window_plan(100, 64, 64)


def test_three_minutes_of_input_give_three_minutes_of_codes_without_seams(lm):
    model, variables = lm
    num_tokens = conditions.num_tokens(180 * 44_100)  # 7751 tokens
    drumless, beat = _song(num_tokens)
    windows = []
    out = sampling.generate(
        model, variables, drumless=drumless, beat=beat, num_takes=2, key=jax.random.key(0),
        config=sampling.SamplingConfig(overlap=24),
        on_window=lambda i, n, tokens: windows.append(tokens),
    )  # fmt: skip
    assert out.shape == (2, num_tokens) and out.dtype == np.int32
    plan = sampling.window_plan(num_tokens, CONFIG.n_ctx, 24)
    assert len(windows) == len(plan)
    for (start, _), (nxt, primed), a, b in zip(plan, plan[1:], windows, windows[1:], strict=False):
        # the continuation window starts with the previous window's overlap, unchanged
        np.testing.assert_array_equal(b[:, :primed], a[:, nxt - start :])
        np.testing.assert_array_equal(out[:, nxt : nxt + CONFIG.n_ctx], b)
    assert not np.array_equal(out[0], out[1])  # two different takes


def test_continuation_logits_follow_the_encoder_window(lm):
    """A primed window's new tokens depend on its own drumless window (the encoder sees it)."""
    model, variables = lm
    drumless, beat = _song(CONFIG.n_ctx)
    primed = np.zeros((1, CONFIG.n_ctx), np.int32)
    args = dict(key=jax.random.key(3), temperature=1.0, top_p=1.0)
    _, a = sampling.sample_window(model, variables, primed, 32, drumless[None], beat[None], **args)
    other = (drumless + 1) % CONFIG.prime_vocab_size
    _, b = sampling.sample_window(model, variables, primed, 32, other[None], beat[None], **args)
    assert np.abs(np.asarray(a)[:, 32] - np.asarray(b)[:, 32]).max() > 1e-3


def test_short_input_is_padded_and_trimmed(lm):
    model, variables = lm
    drumless, beat = _song(conditions.num_tokens(2 * 44_100))  # 2 s: 86 tokens > 64
    assert sampling.generate(
        model, variables, drumless=drumless, beat=beat, key=jax.random.key(1)
    ).shape == (1, 86)
    drumless, beat = _song(20)
    out = sampling.generate(
        model, variables, drumless=drumless, beat=beat, num_takes=3, key=jax.random.key(1)
    )
    assert out.shape == (3, 20)


def test_same_key_same_takes(lm):
    model, variables = lm
    drumless, beat = _song(100)
    a, b = (
        sampling.generate(model, variables, drumless=drumless, beat=beat, key=jax.random.key(5))
        for _ in range(2)
    )
    np.testing.assert_array_equal(a, b)


def test_missing_or_inconsistent_inputs_are_clear_errors(lm):
    model, variables = lm
    drumless, beat = _song(100)
    with pytest.raises(ValueError, match="needs the song's drumless codes"):
        sampling.generate(model, variables, beat=beat, key=jax.random.key(0))
    with pytest.raises(ValueError, match="needs low-level beat conditions"):
        sampling.generate(model, variables, drumless=drumless, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"inconsistent song lengths in tokens: \[90, 100\]"):
        sampling.generate(
            model, variables, drumless=drumless, beat=beat[:90], key=jax.random.key(0)
        )
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sampling.SamplingConfig(temperature=0.0)
