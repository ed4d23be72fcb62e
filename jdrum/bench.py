"""Benchmarks: `python -m jdrum.bench` prints one JSON line per figure, with the device.

    python -m jdrum.bench                      # every benchmark
    python -m jdrum.bench --only tracker       # one group

Figures are throughputs measured after a warm-up call (compilation excluded), the median of
`--repeats` timed runs. CPU figures are compared as ratios (e.g. the JAX tracker against
madmom's processor on the same machine), GPU figures at paper size.
"""

from __future__ import annotations

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


BENCHMARKS = {"tracker": bench_tracker}


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
