"""Benchmarks: `python -m jdrum.bench` prints one JSON line per figure, with the device.

    python -m jdrum.bench                      # every benchmark
    python -m jdrum.bench --only tracker       # one group
    python -m jdrum.bench --only lm_train,sampling --peak_tflops 989

Groups: `lm_train` (LM training tokens/s and model-FLOPs utilisation), `lm` (one window of
cached sampling, its speed-up over uncached sampling, and its cost with classifier-free
guidance, a doubled batch), `sampling` (one 23.78 s take end to
end: LM + drum VQ-VAE decoder + vocoder, and each part, at batch 1 and 16), `vocoder` (real-time
factor of HiFi-GAN V1 and of the Vocos-style generator), `tracker` (clips/s against madmom).
Models are randomly initialised at the tiny size, and also at paper size on an accelerator
(the vocoders at paper size everywhere).

Figures are measured after a warm-up call (compilation excluded), the median of `--repeats`
timed runs. CPU figures are compared as ratios (e.g. the JAX tracker against madmom's processor
on the same machine), GPU figures at paper size.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from configs import hifigan_v1, vocos, vqvae_drums
from configs import lm as lm_configs
from jdrum import audio, griffin_lim, parallel, runs
from jdrum.beat import dbn, features, network, weights
from jdrum.datasets import synth
from jdrum.inference import sampling
from jdrum.models import codec
from jdrum.trainers import lm, vqvae

_ONLY = flags.DEFINE_list("only", [], "Benchmark groups to run (default: all).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per figure (the median is printed).")
_CLIP = flags.DEFINE_integer("clip_length", 2**20, "Clip length in samples (23.78 s at 2**20).")
_PEAK = flags.DEFINE_float(
    "peak_tflops",
    0.0,
    "Peak dense TFLOP/s of one device for the MFU figures (0: the table in bench.py by device "
    "kind and dtype; on a device not in it MFU is left out).",
)

# Peak dense TFLOP/s per device (vendor figures, no sparsity): {device_kind prefix: {dtype}}.
# float32 matmuls run as TF32 on these GPUs under JAX's default precision.
PEAK_TFLOPS = {
    "NVIDIA H100": {"bfloat16": 989.0, "float32": 494.0},
    "NVIDIA H200": {"bfloat16": 989.0, "float32": 494.0},
    "NVIDIA A100": {"bfloat16": 312.0, "float32": 156.0},
    "TPU v4": {"bfloat16": 275.0, "float32": 275.0},
    "TPU v5e": {"bfloat16": 197.0, "float32": 197.0},
    "TPU v5p": {"bfloat16": 459.0, "float32": 459.0},
}


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

    seconds = clip_length / 44_100
    song = synth.make_song(0, synth.SynthConfig(min_seconds=seconds + 1, max_seconds=seconds + 1))
    clip = song.mix[:clip_length]
    variables = weights.load_madmom_downbeat_ensemble()
    for batch in (1, 16):
        clips = [clip] * batch
        feats = features.batch_features(clips)
        net = _seconds(lambda f=feats: network.track(variables, f), repeats)
        _emit("tracker_jax_network", batch / net, "clips/s", batch=batch, clip=clip_length)
        both = _seconds(
            lambda c=clips: network.track(variables, features.batch_features(c)), repeats
        )
        _emit(
            "tracker_jax_features_network", batch / both, "clips/s", batch=batch, clip=clip_length
        )
    madmom = _seconds(lambda: dbn.downbeat_activations(clip), max(1, repeats // 2))
    _emit("tracker_madmom_processor", 1 / madmom, "clips/s", batch=1, clip=clip_length)


def peak_flops(device, dtype: str) -> float | None:
    """Peak FLOP/s of one device for `dtype` (`--peak_tflops`, else `PEAK_TFLOPS`; None if
    unknown, e.g. on CPU)."""
    if _PEAK.value:
        return _PEAK.value * 1e12
    for prefix, peaks in PEAK_TFLOPS.items():
        if device.device_kind.startswith(prefix):
            return peaks[dtype] * 1e12
    return None


def step_flops(jitted, *args) -> float:
    """FLOPs of one call of a jitted function over all devices, as XLA counts them on the
    program before partitioning and optimisation (forward, backward and optimizer of a train
    step; remat recomputation included if the model uses it)."""
    cost = jitted.lower(*args).cost_analysis()
    if isinstance(cost, list):  # older JAX: one dict per program
        cost = cost[0]
    return float(cost["flops"])


def bench_lm_train(clip_length: int, repeats: int) -> None:
    """LM training tokens/s and model-FLOPs utilisation (seq2seq + low beat, float32 and
    bfloat16 compute; tiny, and paper size on an accelerator), over every device."""
    del clip_length
    sizes = ["tiny"] if jax.default_backend() == "cpu" else ["tiny", "paper"]
    for size in sizes:
        for dtype in ("float32", "bfloat16"):
            _bench_lm_train(size, dtype, repeats)


def _bench_lm_train(size: str, dtype: str, repeats: int) -> None:

    config = lm_configs.get_config("seq2seq_low", "tiny" if size == "tiny" else None)
    config.model.dtype = dtype
    model = lm.make_model(config)
    c = model.config
    mesh = parallel.make_mesh(config.mesh)
    state, shardings = parallel.create_state(
        lambda: lm._initial_state(config, model),  # noqa: SLF001
        mesh,
        config.mesh.fsdp_min_size,
    )
    step = parallel.jit_step(functools.partial(lm.train_step, model=model), mesh, shardings)
    batch_size = config.data.batch_size  # global
    rng = np.random.default_rng(0)
    batch = parallel.global_batch(
        {
            "drum": rng.integers(0, c.vocab_size, (batch_size, c.n_ctx)).astype(np.int32),
            "drumless": rng.integers(0, c.prime_vocab_size, (batch_size, c.n_ctx)).astype(np.int32),
            "beat": rng.standard_normal((batch_size, c.n_ctx, c.beat_features)).astype(np.float32),
        },
        mesh,
    )
    flops = step_flops(step.jitted, state, batch)
    holder = [state]

    def one_step():
        holder[0], metrics = step.jitted(holder[0], batch)
        return metrics

    seconds = _seconds(one_step, repeats)
    tokens = batch_size * c.n_ctx
    extra = dict(size=size, dtype=dtype, batch=batch_size, tokens=c.n_ctx, devices=mesh.size)
    _emit("lm_train_tokens_per_s", tokens / seconds, "tokens/s", **extra)
    _emit("lm_train_step_tflops", flops / 1e12, "TFLOP/step", **extra)
    _emit("lm_train_achieved_tflops", flops / seconds / 1e12, "TFLOP/s", **extra)
    peak = peak_flops(jax.devices()[0], dtype)
    if peak:
        _emit("lm_train_mfu", flops / seconds / (peak * mesh.size), "fraction", **extra)


def _uncached_window(model, variables, drumless, beat, key):
    """The baseline the KV cache replaces: a full teacher-forced forward for every token."""

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
    the speed-up over uncached sampling, and the latency with guidance and its ratio to the
    unguided one (tiny seq2seq + low beat; paper size on a GPU)."""
    _bench_lm_size("tiny", clip_length, repeats)
    if jax.default_backend() != "cpu":
        _bench_lm_size("paper", clip_length, repeats)


def _window_lm(size: str, clip_length: int):
    """(model, variables) of a randomly initialised seq2seq + low-beat LM ("tiny" or "paper")
    whose window is one clip of `clip_length` samples."""

    config = lm_configs.get_config("seq2seq_low", "tiny" if size == "tiny" else None)
    config.model.n_ctx = clip_length // 1024  # the tokens of one clip
    config.model.block_len = config.model.n_ctx // 16
    model = lm.make_model(config)
    return model, {"params": lm._initial_state(config, model).params}  # noqa: SLF001


def _bench_lm_size(size: str, clip_length: int, repeats: int) -> None:

    model, variables = _window_lm(size, clip_length)
    c = model.config
    key = jax.random.key(0)
    for batch in (1, 16):
        drumless = jnp.zeros((batch, c.n_ctx), jnp.int32)
        beat = jnp.zeros((batch, c.n_ctx, c.beat_features), jnp.float32)

        def cached(drumless=drumless, beat=beat):
            return sampling.sample_window(model, variables, drumless, 0, drumless, beat, key=key)

        def guided(drumless=drumless, beat=beat):
            return sampling.sample_window(
                model, variables, drumless, 0, drumless, beat, key=key, guidance=jnp.float32(2)
            )

        seconds = _seconds(cached, repeats)
        _emit(f"lm_window_latency_{size}", seconds, "s", batch=batch, tokens=c.n_ctx)
        with_guidance = _seconds(guided, repeats)
        _emit(f"lm_window_latency_guided_{size}", with_guidance, "s", batch=batch, tokens=c.n_ctx)
        _emit(f"lm_guidance_cost_{size}", with_guidance / seconds, "x", batch=batch)
        if size == "tiny" and batch == 1:
            uncached = jax.jit(functools.partial(_uncached_window, model))
            slow = _seconds(lambda: uncached(variables, drumless, beat, key), 1)  # noqa: B023
            _emit("lm_cached_speedup_tiny", slow / seconds, "x", batch=batch, tokens=c.n_ctx)


def bench_vocoder(clip_length: int, repeats: int) -> None:
    """Vocoder real-time factor (seconds of audio per second of compute) of the tiny and the
    paper-size generators (random init, batch 1, on a mel of clip_length / 256 frames: 4096
    frames = 23.78 s at the default clip length): HiFi-GAN V1 with folded weights
    (`vocoder_rtf_{size}`), the Vocos-style generator (`vocoder_rtf_vocos_{size}`) and
    Griffin-Lim (`vocoder_rtf_griffin_lim`: `jdrum.griffin_lim`, 32 iterations, the demo's)."""

    frames = clip_length // 256
    seconds_of_audio = frames * 256 / 44_100
    mel = -3.0 + jax.random.normal(jax.random.key(1), (1, 80, frames), jnp.float32)
    for prefix, module in (("vocoder_rtf", hifigan_v1), ("vocoder_rtf_vocos", vocos)):
        for size in ("tiny", "paper"):
            config = module.get_config("tiny" if size == "tiny" else None)
            generator = runs.generator_config(config).make(weight_norm=False)
            variables = jax.jit(generator.init)(jax.random.key(0), mel[:, :, :4])
            apply = jax.jit(generator.apply)
            seconds = _seconds(lambda a=apply, v=variables: a(v, mel), repeats)
            model = config.model
            _emit(
                f"{prefix}_{size}",
                seconds_of_audio / seconds,
                "x realtime",
                batch=1,
                frames=frames,
                generator=runs.generator_name(config),
                channels=model.get("upsample_initial_channel", model.get("dim")),
            )
    mel_np = np.asarray(mel)
    seconds = _seconds(lambda: griffin_lim.griffin_lim(mel_np), repeats)
    _emit(
        "vocoder_rtf_griffin_lim",
        seconds_of_audio / seconds,
        "x realtime",
        batch=1,
        frames=frames,
        generator="griffin-lim",
        iterations=griffin_lim.GRIFFIN_LIM_ITERS,
    )


def bench_sampling(clip_length: int, repeats: int) -> None:
    """Latency of one clip_length take (23.78 s at 2**20 samples) sampled end to end at batch
    1 and 16: the LM's window with the KV cache, the drum VQ-VAE decoder (codes → mel) and the
    vocoder (mel → audio), each part and the three in a row (tiny; paper size on an
    accelerator). The beat conditioning and drumless codes are given (the tracker and the
    drumless encoder run once per input, not per take)."""
    sizes = ["tiny"] if jax.default_backend() == "cpu" else ["tiny", "paper"]
    for size in sizes:
        _bench_sampling(size, clip_length, repeats)


def _bench_sampling(size: str, clip_length: int, repeats: int) -> None:

    tiny = "tiny" if size == "tiny" else None
    lm_model, lm_variables = _window_lm(size, clip_length)
    c = lm_model.config

    vq_config = vqvae_drums.get_config(tiny)
    vq_model = vqvae.make_model(vq_config)
    frames = clip_length // 256
    vq_variables = jax.jit(vq_model.init, static_argnames="train")(
        jax.random.key(1), jnp.zeros((1, 80, 64)), train=False
    )
    vq_codec = codec.Codec(
        vq_model, vq_variables, audio.MelStats(jnp.full((80,), -3.0), jnp.full((80,), 1.5))
    )

    voc_config = hifigan_v1.get_config(tiny)
    generator = runs.generator_config(voc_config).make(weight_norm=False)
    voc_variables = jax.jit(generator.init)(jax.random.key(2), jnp.zeros((1, 80, 4)))
    vocode = jax.jit(generator.apply)

    key = jax.random.key(0)
    for batch in (1, 16):
        drumless = jnp.zeros((batch, c.n_ctx), jnp.int32)
        beat = jnp.zeros((batch, c.n_ctx, c.beat_features), jnp.float32)

        def lm_part(drumless=drumless, beat=beat):
            return sampling.sample_window(
                lm_model, lm_variables, drumless, 0, drumless, beat, key=key
            )[0]

        codes = lm_part()

        def decode_part(codes=codes):
            return vq_codec.decode(codes)

        mel = decode_part()
        if mel.shape[-1] != frames:
            raise ValueError(f"{c.n_ctx} codes decode to {mel.shape[-1]} frames, not {frames}")

        def vocoder_part(mel=mel):
            return vocode(voc_variables, mel)

        def end_to_end(lm_part=lm_part):
            codes = lm_part()
            mel = vq_codec.decode(codes)
            return vocode(voc_variables, mel)

        extra = dict(size=size, batch=batch, seconds_of_audio=round(clip_length / 44_100, 2))
        for part, fn in (
            ("lm", lm_part),
            ("vq_decode", decode_part),
            ("vocoder", vocoder_part),
            ("end_to_end", end_to_end),
        ):
            _emit(f"sampling_latency_{part}", _seconds(fn, repeats), "s", **extra)


BENCHMARKS = {
    "lm_train": bench_lm_train,
    "lm": bench_lm,
    "sampling": bench_sampling,
    "vocoder": bench_vocoder,
    "tracker": bench_tracker,
}


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
