"""jdrum.parallel: sharding rules, the sharded train step equals the single-device step on 8
fake CPU devices (DESIGN §5.4), and `python -m jdrum.train` run by two processes.

Both device checks run in subprocesses: the CPU device count (XLA_FLAGS) and
`jax.distributed` must be set up before JAX starts. To check another stage's step, add a
function returning (init_fn, step, batches) to `EQUIVALENCE_CASES`; to run another stage in
two processes, add its command-line arguments to `TWO_PROCESS_ARGS`.
"""

import functools
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jdrum import data, parallel, testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-5  # float32, DESIGN §5.4
# Adam's moments of the vocoder: its loss-mel gradients are sums of thousands of terms that
# largely cancel (∝ 1 / mel in quiet bins; conv_post's bias gradient is a sum over every output
# sample), so a differently ordered float32 sum changes them by up to ~5e-5 relative (measured
# 2.3e-5 in mu after two steps on data=8). Its parameters, spectral-norm vectors and metrics
# are held to TOLERANCE like every other stage's state.
FIELD_TOLERANCE = {("vocoder", "generator_opt"): 1e-4, ("vocoder", "discriminator_opt"): 1e-4}
NUM_STEPS = 3  # the first step has learning rate 0 (warm-up), so run a few


def _vqvae_case():
    """Tiny VQ-VAE: 3 steps on global batches of 8 noise clips of 2**14 samples (64 frames)."""
    from configs import vqvae_drums
    from jdrum import audio
    from jdrum.trainers import vqvae

    config = vqvae_drums.get_config("tiny")
    config.model.width = 16
    config.model.down, config.model.up = (0.5,), (2,)  # one scale: half the compile time
    config.opt.warmup_steps = 1
    model = vqvae.make_model(config)
    rng = np.random.default_rng(0)
    n_mels = audio.DEFAULT_SPECTROGRAM.n_mels
    stats = audio.MelStats(
        mean=rng.normal(-2.0, 0.5, n_mels).astype(np.float32),
        std=rng.uniform(0.5, 1.5, n_mels).astype(np.float32),
    )
    batches = [
        {"audio": rng.integers(-8000, 8000, (8, 2**14)).astype(np.int16)} for _ in range(NUM_STEPS)
    ]
    # Initialised once on the host: compiling the VQ-VAE's init per mesh costs ~10 s each on
    # CPU (the tracker case below runs its init on every mesh).
    initial = jax.device_get(vqvae._initial_state(config, model, stats))  # noqa: SLF001
    return lambda: initial, functools.partial(vqvae.train_step, model=model), batches


def _tracker_case():
    """Tiny BLSTM tracker: 3 steps on global batches of 8 random feature sequences (40 frames)."""
    from flax.training import train_state

    from configs import tracker_drums
    from jdrum.trainers import beat_tracker as tracker
    from jdrum.trainers import common

    config = tracker_drums.get_config("tiny")
    config.model.num_layers, config.model.hidden = 2, 8
    config.opt.warmup_steps = 1
    model = tracker.make_model(config)
    rng = np.random.default_rng(1)
    batches = []
    for _ in range(NUM_STEPS):
        logits = rng.normal(size=(8, 40, 3))
        targets = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        features = rng.normal(size=(8, 40, 314))
        batches.append(
            {"features": features.astype(np.float32), "targets": targets.astype(np.float32)}
        )

    def init():
        params = tracker.initial_params(model, config.model, jax.random.key(0))
        return train_state.TrainState.create(
            apply_fn=model.apply, params=params, tx=common.optimizer(config.opt)
        )

    return init, functools.partial(tracker.train_step, model=model), batches


def _lm_case():
    """Tiny seq2seq + low-beat LM (dropout on): 3 steps on global batches of 8 token records."""
    from configs import lm as lm_configs
    from jdrum.trainers import lm

    config = lm_configs.get_config("seq2seq_low", "tiny")
    config.model.update(n_ctx=32, width=16, block_len=8, prime_vocab_size=64)
    config.opt.warmup_steps = 1
    model = lm.make_model(config)
    rng = np.random.default_rng(0)
    batches = [
        {
            "drum": rng.integers(0, 32, (8, 32)).astype(np.int32),
            "drumless": rng.integers(0, 64, (8, 32)).astype(np.int32),
            "beat": rng.standard_normal((8, 32, 50)).astype(np.float32),
        }
        for _ in range(NUM_STEPS)
    ]
    initial = jax.device_get(lm._initial_state(config, model))  # noqa: SLF001
    return lambda: initial, functools.partial(lm.train_step, model=model), batches


def _vocoder_case():
    """Tiny HiFi-GAN (one MPD period, one MSD scale): a mel-L1-only step, then an adversarial
    step, on global batches of 8 excerpts (decaying tones) of 1024 samples.

    Its optimizer moments get a looser bound (`FIELD_TOLERANCE`); the parameters stay
    within 1e-6 of the single-device step.
    """
    from configs import hifigan_v1
    from jdrum.trainers.hifigan import segments, state, step

    config = hifigan_v1.get_config("tiny")
    config.data.segment_length = 1024
    config.model.update(upsample_initial_channel=16, upsample_rates=(16, 16))
    config.model.update(upsample_kernel_sizes=(32, 32), resblock_kernel_sizes=(3,))
    config.model.resblock_dilations = ((1,),)
    config.discriminator.update(width_divisor=64, periods=(2,), scales=1)
    config.train.discriminator_start = 1
    models = state.make_models(config)
    rng = np.random.default_rng(2)
    length = 1024 + 2 * segments.CONTEXT_FRAMES * state.SPEC.hop_length
    t = np.arange(length) / state.SPEC.sample_rate

    def tones():
        hz = rng.uniform(60.0, 4000.0, (8, 1))
        decay = np.exp(-t * rng.uniform(5.0, 40.0, (8, 1)))
        return (8000 * decay * np.sin(2 * np.pi * hz * t)).astype(np.int16)

    batches = [{"excerpt": tones()} for _ in range(2)]
    initial = jax.device_get(state.initial_state(config, models))
    return lambda: initial, functools.partial(step.train_step, models=models), batches


EQUIVALENCE_CASES = {
    "vqvae": _vqvae_case,
    "tracker": _tracker_case,
    "lm": _lm_case,
    "vocoder": _vocoder_case,
}


def run_equivalence(stages):
    """Prints {stage: {mesh: {"state"|"metrics": difference}, "split_arrays": n}} as JSON
    (run with 8 CPU devices)."""
    results = {}
    for stage in stages:
        init, step, batches = EQUIVALENCE_CASES[stage]()
        results[stage] = testing.check_step_equivalence(init, step, batches)
        mesh = parallel.make_mesh({"data": 4, "fsdp": 2})
        specs = parallel.state_shardings(jax.eval_shape(init), mesh, 0)
        results[stage]["split_arrays"] = sum(s.spec != P() for s in jax.tree.leaves(specs))
    print(json.dumps(results))


def _env(**extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUMPY_RANK_PROMOTION="raise", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


# ---------------------------------------------------------------------------- sharding rules


@pytest.mark.parametrize(
    "shape,fsdp,min_size,expected",
    [
        ((512, 1024), 1, 0, P()),  # fsdp off
        ((512, 1024), 4, 0, P(None, "fsdp")),  # the largest divisible axis
        ((1024, 512), 4, 0, P("fsdp")),
        ((3, 512, 512), 2, 0, P(None, None, "fsdp")),  # ties: the last axis
        ((3, 5), 2, 0, P()),  # no divisible axis
        ((6, 5), 2, 0, P("fsdp")),
        ((512,), 2, 1024, P()),  # smaller than min_size
        ((), 2, 0, P()),  # scalars
    ],
)
def test_param_spec(shape, fsdp, min_size, expected):
    assert parallel.param_spec(shape, fsdp, min_size) == expected


def test_one_device_mesh_and_batch_placement():
    mesh = parallel.make_mesh({"data": -1, "fsdp": 1})
    assert dict(mesh.shape) == {"data": jax.device_count(), "fsdp": 1}
    with pytest.raises(ValueError, match="needs"):
        parallel.make_mesh({"data": jax.device_count() + 1, "fsdp": 1})
    batch = {"x": np.arange(12.0, dtype=np.float32).reshape(jax.device_count() * 4, -1)}
    placed = parallel.global_batch(batch, mesh)
    assert placed["x"].sharding == parallel.batch_sharding(mesh)
    np.testing.assert_array_equal(np.asarray(placed["x"]), batch["x"])
    assert parallel.local_batch_size(4 * jax.device_count(), mesh) == 4 * jax.device_count()


# ---------------------------------------------------------------------------- 8 devices


# Each stage is a subprocess that compiles its step on three meshes: 1-3 minutes on 2 cores.
@pytest.mark.slow
@pytest.mark.parametrize("stage", list(EQUIVALENCE_CASES))
def test_sharded_step_equals_single_device_step(stage):
    """DESIGN §5.4 on meshes data=8 and data=4 x fsdp=2, for each stage of EQUIVALENCE_CASES."""
    code = f"from tests import parallel_test; parallel_test.run_equivalence([{stage!r}])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    print(results)
    assert results[stage]["split_arrays"] > 0, stage  # fsdp=2 really splits the state
    for mesh in ("data=8,fsdp=1", "data=4,fsdp=2"):
        result = results[stage][mesh]
        assert result["metrics"] <= TOLERANCE, (stage, mesh, result["metrics"])
        assert set(result["fields"]) >= {f for s, f in FIELD_TOLERANCE if s == stage}
        for field, difference in result["fields"].items():
            tolerance = FIELD_TOLERANCE.get((stage, field), TOLERANCE)
            assert difference <= tolerance, (stage, mesh, field, difference)


# ---------------------------------------------------------------------------- two processes

# stage -> arguments of `python -m jdrum.train` (besides workdir, data and the step counts)
# for a run on the tiny dataset with a global batch of 4 (2 per process); "{data_dir}" stands for
# where the dataset is built and "{token_run}" for a run directory holding its token records.
# The stage's trainer module must have `restore(workdir) -> train state`.
TWO_PROCESS_ARGS = {
    "vqvae": [
        "--config=configs/vqvae_drums.py:tiny",
        "--config.data.dataset=synthstems/tiny",
        "--config.data.data_dir={data_dir}",
        "--config.model.width=16",
        "--config.data.batch_size=4",
        "--config.data.stats_clips=4",
    ],
    "lm": [
        "--config=configs/lm_seq2seq_low.py:tiny",
        "--config.data.dataset=synthstems/tiny",
        "--config.data.tokens={token_run}",
        "--config.model.width=16",
        "--config.model.prime_layers=3",
        "--config.data.batch_size=4",
        "--config.opt.warmup_steps=1",
        "--config.train.eval_every=0",
    ],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    data.builder("synthstems/tiny", data_dir).download_and_prepare()
    return data_dir


@pytest.fixture(scope="module")
def token_run(data_dir, tmp_path_factory):
    """A run directory with synthstems/tiny's token records (untrained tiny VQ-VAEs)."""
    from jdrum.inference import tokenizer
    from tests import tiny_run

    run = tmp_path_factory.mktemp("token_run")
    tiny_run.make_tiny_run(run, data_dir)
    tokenizer.tokenize(str(run), tiny_run.DATASET, str(data_dir))
    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _two_processes(stage, workdir, data_dir, num_steps, cache_dir, token_run) -> list[str]:
    """Runs the stage in two processes of 2 CPU devices each (mesh data=2 x fsdp=2); returns
    each process's log. Runs sharing `cache_dir` reuse each other's compiled programs."""
    port = _free_port()
    command = [sys.executable, "-m", "jdrum.train", "--distributed"]
    command += [f"--coordinator_address=localhost:{port}", "--num_processes=2"]
    command += [a.format(data_dir=data_dir, token_run=token_run) for a in TWO_PROCESS_ARGS[stage]]
    command += [f"--workdir={workdir}", f"--config.train.num_steps={num_steps}"]
    command += ["--config.train.checkpoint_every=2", "--config.train.log_every=1"]
    command += ["--config.mesh.fsdp=2", "--config.mesh.fsdp_min_size=0"]
    env = _env(
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_COMPILATION_CACHE_DIR=str(cache_dir),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    processes = [
        subprocess.Popen(
            command + [f"--process_id={i}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        logs = [p.communicate(timeout=600)[1] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for i, (p, log) in enumerate(zip(processes, logs, strict=True)):
        assert p.returncode == 0, f"process {i}:\n{log[-3000:]}"
    return logs


def _digests(logs) -> list[str]:
    return [re.search(r"state digest \(process \d\): (\w+)", log).group(1) for log in logs]


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(TWO_PROCESS_ARGS))
def test_two_processes_train_checkpoint_and_resume(stage, request, data_dir, tmp_path):
    """Two processes (4 devices) train 4 steps and resume to 6; they hold the same state
    throughout, and end where an uninterrupted two-process run of 6 steps ends."""
    start = time.perf_counter()
    token_run = request.getfixturevalue("token_run") if stage == "lm" else None
    run = functools.partial(_two_processes, stage, data_dir=data_dir, token_run=token_run)
    resumed, straight, cache = tmp_path / "resumed", tmp_path / "straight", tmp_path / "cache"
    first = run(resumed, num_steps=4, cache_dir=cache)
    assert all("step 4:" in log for log in first)
    second = run(resumed, num_steps=6, cache_dir=cache)
    assert all("resumed from step 4" in log for log in second)
    uninterrupted = run(straight, num_steps=6, cache_dir=cache)
    print(f"two-process runs: {time.perf_counter() - start:.1f} s")
    for logs in (first, second, uninterrupted):
        a, b = _digests(logs)
        assert a == b  # both processes hold the same train state
    assert _digests(second) == _digests(uninterrupted)
    # The checkpoints (written by both processes, fsdp-split) restore on one device.
    checkpoints = sorted(int(d) for d in os.listdir(resumed / "checkpoints") if d.isdigit())
    assert checkpoints[-1] == 6
    restore = importlib.import_module(f"jdrum.trainers.{stage}").restore
    a, b = restore(str(resumed)), restore(str(straight))
    assert int(a.step) == 6
    assert testing.max_difference(a, b) == 0.0
