"""Griffin-Lim: the JAX program is librosa's algorithm, and inverts a spectrogram."""

import librosa
import numpy as np
import pytest

from jdrum import audio, griffin_lim
from jdrum.datasets import synth


@pytest.fixture(scope="module")
def drums():
    plan = synth.plan_song(7, synth.SynthConfig(min_seconds=3.0, max_seconds=3.0), "gl")
    return synth.render_song(plan, synth.SynthConfig(min_seconds=3.0, max_seconds=3.0)).drums


def _magnitude(x):
    return np.abs(librosa.stft(x, n_fft=1024, hop_length=256, center=False)).astype(np.float32)


def test_fast_griffin_lim_is_librosas(drums):
    magnitude = _magnitude(drums)
    ours = griffin_lim.fast_griffin_lim(magnitude, n_iter=8, hop_length=256, seed=3)
    theirs = librosa.griffinlim(
        magnitude, n_iter=8, hop_length=256, window="hann", center=False, random_state=3
    )
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert np.sqrt(np.mean((ours - theirs) ** 2) / np.mean(theirs**2)) < 1e-3
    other_seed = griffin_lim.fast_griffin_lim(magnitude, n_iter=8, hop_length=256, seed=4)
    assert np.sqrt(np.mean((other_seed - theirs) ** 2) / np.mean(theirs**2)) > 0.1


def test_griffin_lim_reaches_the_target_spectrogram(drums):
    """More iterations bring the rebuilt magnitude closer to the target's."""
    target = _magnitude(drums)

    def error(n_iter):
        wave = griffin_lim.fast_griffin_lim(target, n_iter=n_iter, hop_length=256)
        return np.linalg.norm(_magnitude(wave) - target) / np.linalg.norm(target)

    assert error(32) < 0.5 * error(0)
    assert error(32) < 0.2


def test_griffin_lim_keeps_the_front_ends_geometry(drums):
    mel = np.asarray(audio.log_mel(drums))
    wave = griffin_lim.griffin_lim(mel)
    assert wave.shape == (mel.shape[1] * audio.DEFAULT_SPECTROGRAM.hop_length,)
    again = np.asarray(audio.log_mel(wave))
    assert np.mean(np.abs(again - mel)) < 0.5


def test_mel_to_magnitude_solves_the_least_squares_at_least_as_well_as_librosa():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=2**15) * np.exp(-np.arange(2**15) % 4410 / 500)).astype(np.float32)
    target = np.power(10.0, np.asarray(audio.log_mel(x)), dtype=np.float32)
    basis = audio.mel_filters(audio.DEFAULT_SPECTROGRAM).astype(np.float32)
    ours = griffin_lim.mel_to_magnitude(basis, target)
    theirs = librosa.util.nnls(basis, target)
    assert ours.shape == theirs.shape and ours.min() >= 0.0
    residual = np.sum((basis @ ours - target) ** 2)
    assert residual <= np.sum((basis @ theirs - target) ** 2)
    assert np.linalg.norm(ours - theirs) < 0.1 * np.linalg.norm(theirs)
