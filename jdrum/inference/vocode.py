"""Mel → waveform: a run's vocoder (HiFi-GAN V1 or Vocos), or Griffin-Lim when it has none.

    audio_BxL = vocode(mel_BxMxT_log10, run_dir="runs/demo")   # runs/demo/vocoder if trained
    vocoder = Vocoder("runs/demo/vocoder")                      # load once, call many times

Mels are the log10 mels of `jdrum.audio.log_mel` (de-normalised: what a drum VQ-VAE's decoder
output becomes after `MelStats.denormalise`), (B, n_mels, T) or (n_mels, T); the audio is
float32 (B, T·256) (or (T·256,)) at 44.1 kHz, frame j centred on sample 256·j + 128 as in the
front end. The generator is whichever the vocoder run's `config.model.generator` names
(`jdrum.runs.load_vocoder`): HiFi-GAN V1 (`jdrum.models.hifigan`) or Vocos (`jdrum.models.vocos`,
ConvNeXt blocks and an inverse STFT); both are fully convolutional over frames, so any T works
(each new T compiles once). Griffin-Lim is `jdrum.griffin_lim.griffin_lim`
(`GRIFFIN_LIM_ITERS` iterations).
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np

from jdrum import griffin_lim, runs


@functools.partial(jax.jit, static_argnums=0)
def _generate(generator, variables, mel_BxMxT):
    return generator.apply(variables, mel_BxMxT)


class Vocoder:
    """A trained vocoder run (`jdrum.runs.load_vocoder`), loaded once; calls are jitted.

    `Vocoder(workdir)(mel)` maps log10 mels (B, n_mels, T) or (n_mels, T) to float32 audio
    (B, T·256) or (T·256,).
    """

    def __init__(self, workdir: str | os.PathLike):
        self.workdir = os.fspath(workdir)
        self.generator, self.variables = runs.load_vocoder(self.workdir)

    @property
    def hop_length(self) -> int:
        return self.generator.hop_length

    def __call__(self, mel_log10) -> np.ndarray:
        mel_BxMxT, single = griffin_lim.batched(mel_log10)
        if mel_BxMxT.shape[2] == 0:
            wave = np.zeros((mel_BxMxT.shape[0], 0), np.float32)
        else:
            wave = np.asarray(_generate(self.generator, self.variables, mel_BxMxT), np.float32)
        return wave[0] if single else wave


def vocode(mel_log10, run_dir: str | os.PathLike | None = None) -> np.ndarray:
    """log10 mels → audio with `run_dir/vocoder` (whichever generator it holds) if it has a
    checkpoint, else Griffin-Lim
    (`griffin_lim.GRIFFIN_LIM_ITERS` iterations).

    Args:
      mel_log10: (B, n_mels, T) or (n_mels, T) log10 mel (de-normalised).
      run_dir: a run directory whose `vocoder` subfolder is a vocoder run, or None.

    Returns:
      float32 audio (B, T·256) or (T·256,).
    """
    if runs.has_vocoder(run_dir):
        workdir = os.path.abspath(os.path.join(os.fspath(run_dir), runs.VOCODER_DIR))
        return _cached_vocoder(workdir, runs.latest_step(workdir))(mel_log10)
    return griffin_lim.griffin_lim(mel_log10)


@functools.lru_cache(maxsize=2)
def _cached_vocoder(workdir: str, step: int) -> Vocoder:
    del step  # part of the cache key: a newer checkpoint loads again
    return Vocoder(workdir)
