"""`jdrum.inference.sampling`: window plans, songs of any length, overlap agreement, priming,
guidance, errors."""

import dataclasses

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


@pytest.mark.parametrize("weight", [0.0, 2.5])
def test_guided_logits_are_the_mixture_of_the_two_predictions(lm, weight):
    """The guided program's step logits equal uncond + W (cond - uncond) of the teacher-forced
    logits of its own tokens, with and without the conditions (W = 0: the unconditional LM)."""
    model, variables = lm
    drumless, beat = _song(CONFIG.n_ctx)
    primed = np.zeros((2, CONFIG.n_ctx), np.int32)
    primed[:, :8] = 3
    tokens, logits = sampling.sample_window(
        model, variables, primed, 8, np.stack([drumless] * 2), np.stack([beat] * 2),
        key=jax.random.key(4), temperature=1.0, top_p=1.0, guidance=np.float32(weight),
    )  # fmt: skip
    inputs = (np.asarray(tokens), np.stack([drumless] * 2), np.stack([beat] * 2))
    conditional = model.apply(variables, *inputs)
    dropped = np.zeros(2)
    unconditional = model.apply(variables, *inputs, keep_beat=dropped, keep_drumless=dropped)
    expected = unconditional + weight * (conditional - unconditional)
    np.testing.assert_allclose(np.asarray(logits)[:, 8:], expected[:, 8:], atol=2e-5, rtol=1e-5)
    assert np.abs(expected - conditional)[:, 8:].max() > 1e-2  # the mixture is not the cond.


def test_guidance_one_samples_exactly_as_without_guidance(lm):
    model, variables = lm
    drumless, beat = _song(100)
    config = sampling.SamplingConfig(guidance=1.0)
    out = sampling.generate(
        model, variables, drumless=drumless, beat=beat, num_takes=2, key=jax.random.key(5),
        config=config,
    )  # fmt: skip
    np.testing.assert_array_equal(out, [[int(c) for c in row] for row in UNPRIMED])
    guided = sampling.generate(
        model, variables, drumless=drumless, beat=beat, num_takes=2, key=jax.random.key(5),
        config=sampling.SamplingConfig(guidance=2.0),
    )  # fmt: skip
    assert guided.shape == out.shape and not np.array_equal(guided, out)


def test_bad_guidance_is_a_clear_error(lm):
    with pytest.raises(ValueError, match=r"guidance must be a number >= 0 \(1: none\), got -1"):
        sampling.SamplingConfig(guidance=-1.0)
    config = dataclasses.replace(CONFIG, encoder=False, beat="none", attn_order=2)
    model = transformer.DrumLM(config)
    variables = model.init(jax.random.key(0), np.zeros((1, CONFIG.n_ctx), np.int32))
    with pytest.raises(ValueError, match="guidance needs an LM with conditions"):
        sampling.generate(
            model, variables, num_tokens=10, key=jax.random.key(0),
            config=sampling.SamplingConfig(guidance=2.0),
        )  # fmt: skip


# Codes of `generate` for `_song(100)`, 2 takes, key 5, default settings, recorded with the
# implementation before priming existed (jax 0.10.2, CPU): no prime must sample exactly these.
UNPRIMED = [
    "6531102650677236107640266605006676217220305070000070240022266267772767761034644722002601052100007547",
    "7500202640677771107510262600006676211220300071000070240002277267772767761034670622000600042100007547",
]  # fmt: skip


def _generate(lm, fixed=None, num_takes=2, song=100, key=5):
    model, variables = lm
    drumless, beat = _song(song)
    return sampling.generate(
        model, variables, drumless=drumless, beat=beat, num_takes=num_takes,
        key=jax.random.key(key), fixed=fixed,
    )  # fmt: skip


def test_no_prime_samples_the_same_codes_as_before(lm):
    expected = np.array([[int(c) for c in row] for row in UNPRIMED], np.int32)
    np.testing.assert_array_equal(_generate(lm), expected)
    all_free = np.full(100, sampling.FREE)
    np.testing.assert_array_equal(_generate(lm, all_free), expected)


def test_a_prime_in_the_middle_is_kept_and_continued(lm):
    """Windows of 64 at (0, 0), (32, 32), (36, 60): the prime 40…69 spans all three."""
    unprimed = _generate(lm, num_takes=3)
    fixed = np.full(100, sampling.FREE)
    fixed[40:70] = np.arange(30) % CONFIG.vocab_size
    out = _generate(lm, fixed, num_takes=3)
    np.testing.assert_array_equal(out[:, 40:70], np.broadcast_to(fixed[40:70], (3, 30)))
    np.testing.assert_array_equal(out[:, :40], unprimed[:, :40])  # sampled as without prime
    assert not np.array_equal(out[:, 70:], unprimed[:, 70:])  # the continuation sees the prime
    assert not np.array_equal(out[0, 70:], out[1, 70:])  # and the takes still differ
    np.testing.assert_array_equal(_generate(lm, fixed, num_takes=3), out)  # same key, same takes


def test_the_fixed_codes_are_seen_by_the_next_token(lm):
    """Two primes that differ only in the fixed tokens give different next-token logits."""
    model, variables = lm
    drumless, beat = _song(CONFIG.n_ctx)
    primed = np.zeros((1, CONFIG.n_ctx), np.int32)
    logits = []
    for code in (1, 6):
        fixed = np.full((1, CONFIG.n_ctx), sampling.FREE)
        fixed[:, 10:20] = code
        args = dict(key=jax.random.key(3), temperature=1.0, top_p=1.0)
        tokens, step_logits = sampling.sample_window(
            model, variables, primed, 0, drumless[None], beat[None], fixed, **args
        )
        np.testing.assert_array_equal(np.asarray(tokens)[0, 10:20], code)
        logits.append(np.asarray(step_logits)[0, 20])
    assert np.abs(logits[0] - logits[1]).max() > 1e-3


def test_a_prime_at_the_start_or_over_the_whole_song(lm):
    fixed = np.full(20, sampling.FREE)  # shorter than a window: padded, trimmed
    fixed[:5] = [7, 1, 2, 3, 4]
    out = _generate(lm, fixed, num_takes=2, song=20)
    assert out.shape == (2, 20)
    np.testing.assert_array_equal(out[:, :5], [[7, 1, 2, 3, 4]] * 2)
    whole = np.random.default_rng(0).integers(0, CONFIG.vocab_size, 150)  # a drum stem's codes
    windows = []
    model, variables = lm
    drumless, beat = _song(150)
    out = sampling.generate(
        model, variables, drumless=drumless, beat=beat, num_takes=2, key=jax.random.key(0),
        fixed=whole, on_window=lambda i, n, tokens: windows.append(tokens),
    )  # fmt: skip
    np.testing.assert_array_equal(out, np.broadcast_to(whole, (2, 150)))
    assert len(windows) == len(sampling.window_plan(150, CONFIG.n_ctx, CONFIG.n_ctx // 2))


def test_bad_fixed_codes_are_clear_errors(lm):
    with pytest.raises(ValueError, match=r"fixed must be \(S,\) codes in \[0, 8\) or -1"):
        _generate(lm, np.full(100, 8))
    with pytest.raises(ValueError, match=r"inconsistent song lengths in tokens: \[90, 100\]"):
        _generate(lm, np.full(90, sampling.FREE))
