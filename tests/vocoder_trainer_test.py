"""The vocoder stage: a few steps on synthstems/tiny, exact resume, fine-tune mode, vocode()."""

import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import hifigan_v1, hifigan_v1_finetune, vqvae_drums
from jdrum import audio, data, griffin_lim, parallel, runs
from jdrum.convert import hifigan as convert
from jdrum.inference import vocode
from jdrum.models import hifigan
from jdrum.trainers import hifigan as vocoder
from jdrum.trainers import vqvae
from jdrum.trainers.hifigan import evaluation, segments, state, step

FIXTURE = (
    pathlib.Path(__file__).resolve().parents[2]
    / "shared"
    / "fixtures"
    / "reference"
    / "hifigan_small.npz"
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    data.builder("synthstems/tiny", data_dir).download_and_prepare()
    return data_dir


def _config(data_dir, module=hifigan_v1, num_steps=2):
    """The tiny config shrunk further so that a step compiles and runs in seconds."""
    config = module.get_config("tiny")
    config.data.update(dataset="synthstems/tiny", data_dir=str(data_dir), batch_size=2)
    config.data.segment_length = 2048
    config.model.update(upsample_initial_channel=16, upsample_rates=(16, 16))
    config.model.update(upsample_kernel_sizes=(32, 32), resblock_kernel_sizes=(3,))
    config.model.resblock_dilations = ((1,),)
    config.discriminator.update(width_divisor=64, periods=(2,), scales=1)
    config.opt.steps_per_epoch = 10  # so that make_models(config) is the trainer's
    config.train.update(num_steps=num_steps, log_every=1, checkpoint_every=2)
    config.train.discriminator_start = 1  # step 0 trains the generator on the mel L1 alone
    config.eval.update(num_clips=1, batch_size=1, griffin_lim_iters=2)
    return config


def _tree_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(a), jax.device_get(b))


@pytest.mark.slow  # ~2 min on 2 cores
def test_trains_resumes_exactly_and_vocodes(data_dir, tmp_path):
    run = tmp_path / "run"
    workdir = str(run / "vocoder")
    first = vocoder.train_and_evaluate(_config(data_dir, num_steps=2), workdir)
    resumed = vocoder.train_and_evaluate(_config(data_dir, num_steps=4), workdir)
    assert int(resumed.step) == 4
    with pytest.raises(AssertionError):
        _tree_equal(first.generator, resumed.generator)
    # The same four steps without a break: the resumed run has the same data and state.
    config = _config(data_dir)
    models = state.make_models(config)
    mesh = parallel.make_mesh(config.mesh)
    train_state, shardings = parallel.create_state(
        lambda: state.initial_state(config, models), mesh
    )
    train_step = parallel.jit_step(
        functools.partial(step.train_step, models=models), mesh, shardings
    )
    batches = iter(segments.segments(config, None, num_epochs=None))
    initial_discriminator = jax.device_get(train_state.discriminator)
    for i in range(4):
        batch = next(batches)
        train_state, metrics = train_step(train_state, batch)
        if i == 0:  # before discriminator_start: the discriminators are left alone
            _tree_equal(initial_discriminator, train_state.discriminator)
            assert float(metrics["adversarial"]) == float(metrics["discriminator_loss"]) == 0
            assert float(metrics["loss"]) == pytest.approx(45 * float(metrics["mel_l1"]))
    _tree_equal(train_state.generator, resumed.generator)
    _tree_equal(train_state.discriminator, resumed.discriminator)
    _tree_equal(train_state.spectral, resumed.spectral)

    # One more step: every loss term is finite and the discriminators moved.
    assert batch["excerpt"].shape == (2, 2048 + 2 * 512)
    before = jax.device_get(resumed.discriminator)
    trained = jax.device_get(resumed.generator)
    train_state, metrics = train_step(resumed, batch)  # donates `resumed`
    for key in ("loss", "discriminator_loss", "adversarial", "feature_matching", "mel_l1"):
        assert np.isfinite(float(metrics[key])), key
    with pytest.raises(AssertionError):
        _tree_equal(before, train_state.discriminator)

    # Evaluation reports the vocoder next to Griffin-Lim on the same held-out clip.
    result = evaluation.Evaluator(config, models.generator, None)(train_state)
    assert 0 < result["mel_l1"] < 20 and 0 < result["griffin_lim_mel_l1"] < 20
    assert result["loss_mel_real_over_generated"].shape == (160, 512)

    # Inference: folded weights, the same audio as the weight-normed training parameters.
    generator, variables = runs.load_vocoder(workdir)
    assert not generator.weight_norm and "kernel" in variables["params"]["conv_pre"]
    mel = np.full((1, 80, 7), -3.0, np.float32)
    mel[:, :20] = -1.0
    expected = models.generator.apply({"params": trained}, mel)
    wave = vocode.Vocoder(workdir)(mel)
    assert wave.shape == (1, 7 * 256) and wave.dtype == np.float32
    np.testing.assert_allclose(wave, np.asarray(expected), atol=1e-5)
    np.testing.assert_allclose(vocode.vocode(mel[0], run_dir=run), wave[0], atol=1e-6)


@pytest.mark.slow  # a second train-step compilation (the batch carries mels): ~30 s
def test_finetune_mode_uses_the_vqvae_reconstructions(data_dir, tmp_path):
    vq_config = vqvae_drums.get_config("tiny")
    vq_config.model.width = 16
    model = vqvae.make_model(vq_config)
    variables = jax.jit(model.init, static_argnames="train")(
        jax.random.key(0), jnp.zeros((1, 80, 64)), train=False
    )
    stats = audio.MelStats(np.full(80, -3.0, np.float32), np.full(80, 1.5, np.float32))
    runs.write_vqvae(str(tmp_path / "vq"), vq_config, variables, stats)

    config = _config(data_dir, hifigan_v1_finetune, num_steps=1)
    config.data.vqvae_run = str(tmp_path / "vq")
    workdir = str(tmp_path / "vocoder")
    trained = vocoder.train_and_evaluate(config, workdir)
    assert int(trained.step) == 1

    mels = np.load(os.path.join(workdir, "finetune_mels", "train.npy"))
    source = data.data_source("synthstems/tiny", "train", data_dir)
    assert mels.shape == (len(source), 80, 2**17 // 256)
    pcm = source[0]["drums"][None]
    mel = stats.normalise(np.asarray(audio.log_mel(audio.from_pcm16(pcm))))
    recon = stats.denormalise(np.asarray(model.apply(variables, mel, train=False)[0]))
    np.testing.assert_allclose(mels[0], recon[0], atol=1e-4)
    batch = next(iter(segments.segments(config, mels, num_epochs=None)))
    assert batch["mel"].shape == (2, 80, 8) and batch["excerpt"].shape == (2, 3072)


def test_vocode_falls_back_to_griffin_lim(tmp_path):
    t = 9
    mel = np.asarray(audio.log_mel(0.1 * np.sin(np.arange(t * 256) * 0.05)))[None]
    assert not runs.has_vocoder(tmp_path)
    wave = vocode.vocode(mel, run_dir=tmp_path)
    assert wave.shape == (1, t * 256) and wave.dtype == np.float32
    np.testing.assert_array_equal(wave, griffin_lim.griffin_lim(mel))
    assert vocode.vocode(mel[0]).shape == (t * 256,)


def test_write_run_of_the_converted_reference_generator(tmp_path):
    if not FIXTURE.exists():
        pytest.skip(f"reference fixture missing: {FIXTURE} (the shared fixtures checkout)")
    model_config, variables = convert.load_official_vocoder(FIXTURE, weight_norm=True)
    config = hifigan_v1.get_config("tiny")
    config.model.update(model_config)
    config.discriminator.update(width_divisor=64, periods=(2,), scales=1)
    config.opt.steps_per_epoch = 10
    runs.write_vocoder(str(tmp_path / "vocoder"), config, variables["params"])
    with np.load(FIXTURE) as npz:
        mel, expected = npz["in/mel_log10"], npz["out/wave"][:, 0]
    np.testing.assert_allclose(vocode.vocode(mel, run_dir=tmp_path), expected, atol=1e-4)
    folded = convert.load_official_vocoder(FIXTURE)[1]
    with pytest.raises(ValueError, match="weight-norm"):
        runs.write_vocoder(str(tmp_path / "other"), config, folded["params"])
    assert isinstance(runs.generator_config(config).make(), hifigan.Generator)
