"""The Vocos-style vocoder: output geometry, the ISTFT head, the paper size, a few training
steps, a run round trip, and choosing it (or not) with `vocoder=` / `--vocoder`."""

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_run

from configs import hifigan_v1, vocos
from jdrum import audio, losses, parallel, runs
from jdrum.inference import pipeline, vocode
from jdrum.models import hifigan
from jdrum.models import vocos as vocos_model
from jdrum.trainers.hifigan import segments, state, step

N_FFT, HOP = 1024, 256
PAD = (N_FFT - HOP) // 2  # the front end's reflect padding, 384


def _small_config(**model):
    """configs/vocos.py:tiny with a smaller model, so that it compiles in a second or two."""
    config = vocos.get_config("tiny")
    config.model.update(dim=16, intermediate=32, num_layers=2, **model)
    return config


def _init(generator, seed=0):
    mel = jnp.zeros((1, generator.n_mels, 4), jnp.float32)
    return jax.jit(generator.init)(jax.random.key(seed), mel)


def _front_end_stft(x_BxL):
    """The STFT of `jdrum.audio.log_mel`, in NumPy float64: reflect pad 384, periodic Hann 1024
    frames 256 apart, no centring → (B, L // 256, 513) complex."""
    padded = np.pad(np.asarray(x_BxL, np.float64), [(0, 0), (PAD, PAD)], mode="reflect")
    count = x_BxL.shape[1] // HOP
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    frames = np.stack([padded[:, HOP * j : HOP * j + N_FFT] for j in range(count)], axis=1)
    return np.fft.rfft(frames * window.reshape(1, 1, N_FFT), axis=-1)


def test_output_is_t_times_256_samples_for_any_t():
    generator = runs.generator_config(_small_config()).make()
    assert isinstance(generator, vocos_model.Vocos) and generator.hop_length == HOP
    variables = _init(generator)
    apply = jax.jit(generator.apply)
    for frames in (1, 2, 5, 33):
        mel = jnp.full((2, 80, frames), -3.0, jnp.float32)
        wave = apply(variables, mel)
        assert wave.shape == (2, frames * HOP) and wave.dtype == jnp.float32, frames
        assert bool(jnp.all(jnp.isfinite(wave)))
    with pytest.raises(ValueError, match=r"expected a mel \(B, 80, T\)"):
        generator.apply(variables, jnp.zeros((1, 64, 3)))


def test_bfloat16_compute_keeps_float32_params_and_output():
    generator = runs.generator_config(_small_config(dtype="bfloat16")).make()
    variables = _init(generator)
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    wave = jax.jit(generator.apply)(variables, jnp.full((1, 80, 3), -3.0))
    assert wave.dtype == jnp.float32 and wave.shape == (1, 3 * HOP)


def test_istft_inverts_the_front_end_stft():
    x = (0.3 * np.random.default_rng(0).standard_normal((2, 40 * HOP))).astype(np.float32)
    spectrum = _front_end_stft(x)
    assert np.abs(spectrum).max() < vocos_model.MAX_MAGNITUDE  # below the head's clip
    rebuilt = np.asarray(vocos_model.istft(jnp.asarray(spectrum, jnp.complex64), N_FFT, HOP))
    assert rebuilt.shape == x.shape
    np.testing.assert_allclose(rebuilt[:, N_FFT:-N_FFT], x[:, N_FFT:-N_FFT], atol=2e-6)
    # The squared window sums to 0.75 or more there, so the edges come back too.
    np.testing.assert_allclose(rebuilt, x, atol=2e-6)
    # The head's parametrisation: log-magnitude and phase.
    head = vocos_model.spectrum_to_audio(
        jnp.asarray(np.log(np.abs(spectrum)), jnp.float32),
        jnp.asarray(np.angle(spectrum), jnp.float32),
        N_FFT,
        HOP,
    )
    np.testing.assert_allclose(np.asarray(head)[:, N_FFT:-N_FFT], x[:, N_FFT:-N_FFT], atol=1e-5)
    # ... and the front end's own mel of the rebuilt audio.
    np.testing.assert_allclose(audio.log_mel(head), audio.log_mel(x), atol=1e-3)
    with pytest.raises(ValueError, match="istft needs the hop"):
        vocos_model.istft(jnp.asarray(spectrum, jnp.complex64), N_FFT, 300)


@pytest.mark.parametrize("frames,j", [(1, 0), (6, 0), (6, 3), (6, 5)])
def test_frame_j_is_centred_on_sample_256j_plus_128(frames, j):
    # A frame whose inverse FFT is an impulse at the window's centre (sample 512).
    spectrum = np.zeros((1, frames, N_FFT // 2 + 1), np.complex64)
    spectrum[0, j] = (-1.0) ** np.arange(N_FFT // 2 + 1)
    wave = np.asarray(vocos_model.istft(jnp.asarray(spectrum), N_FFT, HOP))[0]
    assert wave.shape == (frames * HOP,)
    assert np.argmax(np.abs(wave)) == HOP * j + HOP // 2
    assert np.count_nonzero(np.abs(wave) > 1e-6) == 1


def test_the_head_clips_magnitudes_at_100():
    phase = jnp.zeros((1, 3, 513))
    clipped = vocos_model.spectrum_to_audio(jnp.full((1, 3, 513), 9.0), phase, N_FFT, HOP)
    at_100 = vocos_model.spectrum_to_audio(jnp.full((1, 3, 513), np.log(100.0)), phase, N_FFT, HOP)
    below = vocos_model.spectrum_to_audio(jnp.full((1, 3, 513), 4.0), phase, N_FFT, HOP)
    np.testing.assert_allclose(clipped, at_100, rtol=1e-6)
    np.testing.assert_allclose(below, at_100 * np.exp(4.0) / 100.0, rtol=1e-5, atol=1e-5)


def test_the_magnitude_prior_is_what_a_zero_head_outputs():
    # A flat spectrum (every bin at 0.3) gives back 0.3 wherever a mel filter reaches.
    filters = vocos_model.prior_filters(80, N_FFT)
    mel = np.log10(audio.mel_filters() @ np.full(N_FFT // 2 + 1, 0.3))
    prior = np.exp(vocos_model.prior_log_magnitude(jnp.asarray(mel)[None, :, None], N_FFT))
    covered = filters.sum(axis=0) > 0
    assert covered[1:].all()  # only DC lies outside every filter
    np.testing.assert_allclose(prior[0, 0, covered], 0.3, rtol=1e-4)
    # With the head at zero the generator's log-magnitude is the prior.
    generator = runs.generator_config(_small_config(magnitude_prior=True)).make()
    params = _init(generator)["params"]
    params["head"] = jax.tree.map(jnp.zeros_like, params["head"])
    mel_BxMxT = jnp.asarray(np.random.default_rng(0).uniform(-4, 0, (1, 80, 6)), jnp.float32)
    log_magnitude, phase = generator.apply({"params": params}, mel_BxMxT, spectrum=True)
    np.testing.assert_allclose(
        log_magnitude, vocos_model.prior_log_magnitude(mel_BxMxT, N_FFT), rtol=1e-6
    )
    assert phase.shape == log_magnitude.shape == (1, 6, 513) and not np.any(phase)


def test_paper_size_parameter_count():
    config = runs.generator_config(vocos.get_config())
    assert config == vocos_model.VocosConfig()  # the paper's mel model, 80 bands
    shapes = jax.eval_shape(config.make().init, jax.random.key(0), jnp.zeros((1, 80, 4)))
    count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes))
    # embed 80·7·512 + 512, LayerNorm 1,024; 8 blocks of (7·512 + 512) + 1,024
    # + (512·1536 + 1536) + (1536·512 + 512) + 512 = 1,580,544; final LayerNorm 1,024;
    # head 512·1026 + 1026 = 526,338.
    assert count == config.num_params == 13_459_970
    tiny = runs.generator_config(vocos.get_config("tiny"))
    shapes = jax.eval_shape(tiny.make().init, jax.random.key(0), jnp.zeros((1, 80, 4)))
    assert sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes)) == tiny.num_params


def test_configs():
    config = vocos.get_config("tiny,finetune")
    assert config.stage == "vocoder" and config.model.generator == "vocos"
    assert config.data.vqvae_run == "runs/demo/vqvae_drums"
    assert vocos.get_config("tiny").data.vqvae_run == ""
    assert runs.generator_name(hifigan_v1.get_config("tiny")) == "hifigan_v1"
    del config.model["generator"]  # a run written before the field existed
    assert runs.generator_name(config) == "hifigan_v1"
    config.model.generator = "melgan"
    with pytest.raises(ValueError, match="unknown vocoder generator 'melgan'"):
        runs.generator_config(config)


# ----------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    tiny_run.build_dataset(data_dir)
    return str(data_dir)


def test_a_few_tiny_training_steps_reduce_the_mel_loss(data_dir):
    config = vocos.get_config("tiny")  # the tiny model; small batches and discriminators
    config.data.update(dataset="synthstems/tiny", data_dir=data_dir, batch_size=2)
    config.data.segment_length = 4096
    config.discriminator.update(width_divisor=64, periods=(2,), scales=1)
    config.opt.steps_per_epoch = 10
    num_steps = 32
    config.train.discriminator_start = num_steps - 2  # the last two steps with the GAN terms
    models = state.make_models(config)
    assert isinstance(models.generator, vocos_model.Vocos)
    mesh = parallel.make_mesh(config.mesh)
    train_state, shardings = parallel.create_state(
        lambda: state.initial_state(config, models), mesh
    )
    train_step = parallel.jit_step(
        functools.partial(step.train_step, models=models), mesh, shardings
    )
    batch = next(iter(segments.segments(config, None, num_epochs=None)))

    @jax.jit
    def mel_l1(params):
        mel, real = step._inputs(batch)  # noqa: SLF001
        fake = models.generator.apply({"params": params}, mel)
        return jnp.mean(jnp.abs(losses.loss_mel(real) - losses.loss_mel(fake)))

    # One batch over and over: its loss must fall (a broken head or ISTFT gradient would not).
    before = float(mel_l1(train_state.generator))
    for _ in range(num_steps):
        train_state, metrics = train_step(train_state, batch)
    assert int(train_state.step) == num_steps
    keys = ("loss", "discriminator_loss", "adversarial", "feature_matching", "mel_l1", "stft_loss")
    for key in keys:
        assert np.isfinite(float(metrics[key])) and float(metrics[key]) > 0, key
    after = float(mel_l1(train_state.generator))
    assert after < 0.75 * before, (before, after)


# ------------------------------------------------------------------------------ runs, selection


def _write_vocos_run(workdir, seed=0):
    config = _small_config()
    generator = runs.generator_config(config).make()
    params = _init(generator, seed)["params"]
    runs.write_vocoder(str(workdir), config, params)
    return generator, params


def _write_hifigan_run(workdir, drop_generator_field=False):
    config = hifigan_v1.get_config("tiny")
    config.model.update(upsample_initial_channel=16, upsample_rates=(16, 16))
    config.model.update(upsample_kernel_sizes=(32, 32), resblock_kernel_sizes=(3,))
    config.model.resblock_dilations = ((1,),)
    if drop_generator_field:
        del config.model["generator"]
    generator = runs.generator_config(config).make(weight_norm=True)
    runs.write_vocoder(str(workdir), config, _init(generator)["params"])


def test_load_vocoder_round_trip(tmp_path):
    generator, params = _write_vocos_run(tmp_path / "run" / "vocoder")
    workdir = str(tmp_path / "run" / "vocoder")
    assert runs.vocoder_generator(workdir) == "vocos"
    loaded, variables = runs.load_vocoder(workdir)
    assert loaded == generator
    jax.tree.map(np.testing.assert_array_equal, variables["params"], jax.device_get(params))
    mel = np.full((1, 80, 7), -3.0, np.float32)
    mel[:, :20] = -1.0
    expected = np.asarray(generator.apply({"params": params}, mel))
    wave = vocode.Vocoder(workdir)(mel)
    assert wave.shape == (1, 7 * HOP) and wave.dtype == np.float32
    np.testing.assert_allclose(wave, expected, atol=1e-6)
    # `vocode` with the run directory ("auto") uses it too.
    np.testing.assert_allclose(vocode.vocode(mel[0], run_dir=tmp_path / "run"), wave[0], atol=1e-6)
    # Vocos params do not fit a HiFi-GAN config, and the other way round.
    with pytest.raises(ValueError, match="weight-norm"):
        runs.write_vocoder(str(tmp_path / "other"), hifigan_v1.get_config("tiny"), params)


def test_old_vocoder_runs_load_as_hifigan(tmp_path):
    _write_hifigan_run(tmp_path / "vocoder", drop_generator_field=True)
    assert "generator" not in runs.read_config(tmp_path / "vocoder").model
    assert runs.vocoder_generator(tmp_path / "vocoder") == "hifigan_v1"
    generator, _ = runs.load_vocoder(tmp_path / "vocoder")
    assert isinstance(generator, hifigan.Generator) and not generator.weight_norm


def _fake_run(root, vocoder: str | None):
    """Stage folders without weights: enough for `Pipeline` to get to its vocoder checks."""
    for part in (*runs.VQVAE_DIRS.values(), runs.LM_DIR):
        os.makedirs(root / part)
    if vocoder == "vocos":
        _write_vocos_run(root / runs.VOCODER_DIR)
    elif vocoder == "hifigan":
        _write_hifigan_run(root / runs.VOCODER_DIR)
    return root


def test_pipeline_vocoder_names_must_match_the_run(tmp_path):
    with_vocos = _fake_run(tmp_path / "vocos", "vocos")
    with_hifigan = _fake_run(tmp_path / "hifigan", "hifigan")
    without = _fake_run(tmp_path / "none", None)
    with pytest.raises(ValueError, match=r"is a Vocos vocoder, not HiFi-GAN \(vocoder='hifigan'"):
        pipeline.Pipeline(with_vocos, vocoder="hifigan")
    with pytest.raises(ValueError, match=r"is a HiFi-GAN vocoder, not Vocos \(vocoder='vocos'"):
        pipeline.Pipeline(with_hifigan, vocoder="vocos")
    with pytest.raises(FileNotFoundError, match=r"no trained vocoder/ \(vocoder='vocos'\)"):
        pipeline.Pipeline(without, vocoder="vocos")
    # Past the vocoder checks, the (empty) VQ-VAE folder is the next problem.
    for run, name in ((with_vocos, "vocos"), (with_vocos, "auto"), (with_hifigan, "hifigan")):
        with pytest.raises(FileNotFoundError, match="vqvae_drums: no config.json"):
            pipeline.Pipeline(run, vocoder=name)


def test_sample_vocoder_flag_errors_are_one_line(tmp_path):
    run = _fake_run(tmp_path / "run", "vocos")
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={tmp_path}"]
    command += [f"--output={tmp_path / 'out'}", "--vocoder=hifigan"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"jdrum.sample: {run}: vocoder/ is a Vocos vocoder, not HiFi-GAN (vocoder='hifigan';"
        " 'auto' uses it)"
    )
    assert "Traceback" not in result.stderr
