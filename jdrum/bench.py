"""Benchmarks: `python -m jdrum.bench` prints one JSON line per figure, with the device.

    python -m jdrum.bench                      # every benchmark
    python -m jdrum.bench --only tracker       # one group

Figures are throughputs measured after a warm-up call (compilation excluded), the median of
`--repeats` timed runs. CPU figures are compared as ratios (e.g. the JAX tracker against
madmom's processor on the same machine), GPU figures at paper size.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable

import jax
from absl import app, flags

_ONLY = flags.DEFINE_list("only", [], "Benchmark groups to run (default: all).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per figure (the median is printed).")
_CLIP = flags.DEFINE_integer("clip_length", 2**20, "Clip length in samples (23.78 s at 2**20).")


def _seconds(fn: Callable[[], object], repeats: int) -> float:
    jax.block_until_ready(fn())  # warm-up: compile, fill caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _emit(name: str, value: float, unit: str, **extra) -> None:
    device = jax.devices()[0]
    record = {"name": name, "value": round(value, 4), "unit": unit}
    record.update(extra, device=f"{device.platform}:{device.device_kind}")
    print(json.dumps(record), flush=True)


def bench_tracker(clip_length: int, repeats: int) -> None:
    """Tracker clips/s: the JAX madmom ensemble (network; features + network) vs madmom."""
    from jdrum import synth
    from jdrum.beat import dbn, features, tracker, weights

    seconds = clip_length / 44_100
    song = synth.make_song(0, synth.SynthConfig(min_seconds=seconds + 1, max_seconds=seconds + 1))
    clip = song.mix[:clip_length]
    variables = weights.load_madmom_downbeat_ensemble()
    for batch in (1, 16):
        clips = [clip] * batch
        feats = features.batch_features(clips)
        network = _seconds(lambda f=feats: tracker.track(variables, f), repeats)
        _emit("tracker_jax_network", batch / network, "clips/s", batch=batch, clip=clip_length)
        both = _seconds(
            lambda c=clips: tracker.track(variables, features.batch_features(c)), repeats
        )
        _emit(
            "tracker_jax_features_network", batch / both, "clips/s", batch=batch, clip=clip_length
        )
    madmom = _seconds(lambda: dbn.downbeat_activations(clip), max(1, repeats // 2))
    _emit("tracker_madmom_processor", 1 / madmom, "clips/s", batch=1, clip=clip_length)


def _uncached_window(model, variables, drumless, beat, key):
    """The baseline the KV cache replaces: a full teacher-forced forward for every token."""
    import jax.numpy as jnp

    from jdrum import sampling

    length = drumless.shape[1]

    def body(t, carry):
        tokens, key = carry
        logits = model.apply(variables, tokens, drumless, beat)[:, t]
        key, sub = jax.random.split(key)
        token = jax.random.categorical(sub, sampling.filter_logits(logits / 0.96, 0, 0.8))
        return tokens.at[:, t].set(token.astype(jnp.int32)), key

    start = jnp.zeros(drumless.shape, jnp.int32)
    return jax.lax.fori_loop(0, length, body, (start, key))[0]


def bench_lm(clip_length: int, repeats: int) -> None:
    """Sampling latency of one window (all of its tokens) with the KV cache, batch 1 and 16,
    and the speed-up over uncached sampling (tiny seq2seq + low beat; paper size on a GPU)."""
    _bench_lm_size("tiny", clip_length, repeats)
    if jax.default_backend() != "cpu":
        _bench_lm_size("paper", clip_length, repeats)


def _bench_lm_size(size: str, clip_length: int, repeats: int) -> None:
    import jax.numpy as jnp

    from configs import lm as lm_configs
    from jdrum import sampling
    from jdrum.trainers import lm

    config = lm_configs.get_config("seq2seq_low", "tiny" if size == "tiny" else None)
    config.model.n_ctx = clip_length // 1024  # the tokens of one clip
    config.model.block_len = config.model.n_ctx // 16
    model = lm.make_model(config.model)
    c = model.config
    variables = {"params": lm._initial_state(config, model).params}  # noqa: SLF001
    key = jax.random.key(0)
    for batch in (1, 16):
        drumless = jnp.zeros((batch, c.n_ctx), jnp.int32)
        beat = jnp.zeros((batch, c.n_ctx, c.beat_features), jnp.float32)

        def cached(drumless=drumless, beat=beat):
            return sampling.sample_window(model, variables, drumless, 0, drumless, beat, key=key)

        seconds = _seconds(cached, repeats)
        _emit(f"lm_window_latency_{size}", seconds, "s", batch=batch, tokens=c.n_ctx)
        if size == "tiny" and batch == 1:
            uncached = jax.jit(functools.partial(_uncached_window, model))
            slow = _seconds(lambda: uncached(variables, drumless, beat, key), 1)  # noqa: B023
            _emit("lm_cached_speedup_tiny", slow / seconds, "x", batch=batch, tokens=c.n_ctx)


def bench_vocoder(clip_length: int, repeats: int) -> None:
    """Vocoder real-time factor (seconds of audio per second of compute) of the tiny and the
    paper-size HiFi-GAN V1 generators (folded weights, random init), batch 1, on a mel of
    clip_length / 256 frames (4096 frames = 23.78 s at the default clip length)."""
    import jax.numpy as jnp

    from configs import hifigan_v1
    from jdrum.trainers import vocoder

    frames = clip_length // 256
    seconds_of_audio = frames * 256 / 44_100
    mel = -3.0 + jax.random.normal(jax.random.key(1), (1, 80, frames), jnp.float32)
    for size in ("tiny", "paper"):
        config = hifigan_v1.get_config("tiny" if size == "tiny" else None)
        generator = vocoder.make_generator(config.model, weight_norm=False)
        variables = jax.jit(generator.init)(jax.random.key(0), mel[:, :, :4])
        apply = jax.jit(generator.apply)
        seconds = _seconds(lambda a=apply, v=variables: a(v, mel), repeats)
        _emit(
            f"vocoder_rtf_{size}",
            seconds_of_audio / seconds,
            "x realtime",
            batch=1,
            frames=frames,
            channels=config.model.upsample_initial_channel,
        )


BENCHMARKS = {"lm": bench_lm, "tracker": bench_tracker, "vocoder": bench_vocoder}


def main(argv):
    del argv
    names = _ONLY.value or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise app.UsageError(f"unknown benchmark {unknown}; known: {', '.join(BENCHMARKS)}")
    for name in names:
        BENCHMARKS[name](_CLIP.value, _REPEATS.value)


if __name__ == "__main__":
    app.run(main)
