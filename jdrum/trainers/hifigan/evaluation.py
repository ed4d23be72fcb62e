"""Vocoder evaluation: whole validation clips vocoded and scored against the real audio,
next to Griffin-Lim on the same mels."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jdrum import audio, data, griffin_lim, losses, parallel, runs
from jdrum.trainers.hifigan.state import TrainState


def _vocode_and_score(params, batch, generator):
    """(loss mel of the first generated clip (n_mels, T), loss-mel L1 per clip (B,)) for whole
    clips, batch = (mel (B, n_mels, T), int16 PCM (B, L))."""
    mel_BxMxT, pcm_BxL = batch
    fake = generator.apply({"params": params}, mel_BxMxT)
    real = audio.from_pcm16(pcm_BxL)
    fake_mel = losses.loss_mel(fake)
    l1 = jnp.mean(jnp.abs(losses.loss_mel(real) - fake_mel), axis=(1, 2))
    return fake_mel[0], l1


@jax.jit
def _score(fake_BxL, pcm_BxL):
    real = audio.from_pcm16(pcm_BxL)
    return jnp.mean(jnp.abs(losses.loss_mel(real) - losses.loss_mel(fake_BxL)), axis=(1, 2))


@jax.jit
def _clip_mels(pcm_BxL):
    return audio.log_mel(audio.from_pcm16(pcm_BxL))


_GRIFFIN_LIM_L1: dict[tuple, float] = {}  # the baseline does not change during training


class Evaluator:
    """Vocodes the held-out clips (validation split, whole clips) and scores them.

    Returns `mel_l1` (the generator) and `griffin_lim_mel_l1` (Griffin-Lim on the same mels,
    computed once), both the mean over clips of the loss-mel L1 against the real audio, their
    ratio, and an image of the first clip's loss mel, real over generated.
    """

    def __init__(self, config, generator: runs.Generator, mels: np.ndarray | None, mesh=None):
        """`mesh`: the training mesh (the state's); every process evaluates the same clips,
        with the batches replicated over it."""
        self.config, self.generator, self.mels, self.mesh = config, generator, mels, mesh
        self._vocode_and_score = parallel.replicated_evaluation(
            _vocode_and_score, mesh, static_argnums=(2,)
        )
        source = data.data_source(config.data.dataset, "validation", config.data.data_dir)
        count = len(source)
        if config.eval.num_clips:
            count = min(count, config.eval.num_clips)
        self.source, self.count = source, count
        data_config = config.data
        self._griffin_lim_key = (
            data_config.dataset,
            os.path.abspath(data_config.data_dir),
            data_config.stem,
            os.path.abspath(data_config.vqvae_run) if data_config.vqvae_run else "",
            count,
            config.eval.griffin_lim_iters,
        )

    def _batches(self):
        size = self.config.eval.batch_size
        stem = self.config.data.stem
        for begin in range(0, self.count, size):
            indices = list(range(begin, min(begin + size, self.count)))
            pcm = np.stack([np.asarray(self.source[i][stem], np.int16) for i in indices])
            if self.mels is not None:
                mel = np.asarray(self.mels[indices[0] : indices[-1] + 1])
            else:
                mel = np.asarray(_clip_mels(pcm))
            yield pcm, mel

    def griffin_lim(self) -> float:
        """Griffin-Lim's loss-mel L1 on the same clips (computed once per process)."""
        if self._griffin_lim_key not in _GRIFFIN_LIM_L1:
            scores = []
            for pcm, mel in self._batches():
                wave = griffin_lim.griffin_lim(mel, n_iter=self.config.eval.griffin_lim_iters)
                scores.append(np.asarray(_score(jnp.asarray(wave), pcm)))
            l1 = float(np.concatenate(scores).mean()) if scores else float("nan")
            _GRIFFIN_LIM_L1[self._griffin_lim_key] = l1
        return _GRIFFIN_LIM_L1[self._griffin_lim_key]

    def __call__(self, state: TrainState) -> dict:
        if not self.count:
            return {}
        scores, first = [], None
        for pcm, mel in self._batches():
            fake_mel, l1 = self._vocode_and_score(state.generator, (mel, pcm), self.generator)
            scores.append(np.asarray(l1))
            if first is None:
                real_mel = losses.loss_mel(audio.from_pcm16(jnp.asarray(pcm[:1])))[0]
                first = np.concatenate([np.asarray(fake_mel), np.asarray(real_mel)], axis=0)
        mel_l1 = float(np.concatenate(scores).mean())
        griffin_lim = self.griffin_lim()
        return {
            "mel_l1": mel_l1,
            "griffin_lim_mel_l1": griffin_lim,
            "mel_l1_over_griffin_lim": mel_l1 / griffin_lim,
            "loss_mel_real_over_generated": first,
        }
