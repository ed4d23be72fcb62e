"""The vocoder stage: a HiFi-GAN V1 or a Vocos-style generator on the drum stem (REFERENCE §6).

`config.model.generator` picks the generator (`jdrum.runs.generator_config`): "hifigan_v1"
(`jdrum.models.hifigan`, `configs/hifigan_v1.py`; the default when the field is absent) or
"vocos" (`jdrum.models.vocos`, `configs/vocos.py`). Data, discriminators, losses, train step
and evaluation are the same code for both.

Every training example is a random `segment_length`-sample segment of a clip's drum stem (the
record's mono int16 PCM / 32768; the reference's loader assumed stereo wavs, REFERENCE §10.17),
starting at a multiple of the mel hop, with the matching window of a log10 mel (segment / 256
frames: 32 for HiFi-GAN's 8192 samples) as the generator input:

* plain mode: the log10 mel of the real audio (`jdrum.audio.log_mel`), exactly the frames the
  whole clip's mel has there (the segment is cut with two frames of context on both sides);
* fine-tune mode (`config.data.vqvae_run` set): the drum VQ-VAE's reconstruction of the whole
  clip's mel (normalise → VQ-VAE → de-normalise), what the generator receives at inference.
  The reconstructions are computed once per split into `<workdir>/finetune_mels/`.

One jitted step updates the discriminators (MPD + MSD, LSGAN) on the generator's output and then
the generator (LSGAN + 2 × feature matching + 45 × mel L1 on the natural-log loss mel, plus
`config.loss.stft` × the multi-resolution STFT loss, `jdrum.losses.stft_loss`), each with
its own AdamW (`config.opt`; HiFi-GAN's: 2e-4, β (0.8, 0.99), weight decay 0.01) and
exponential decay (0.999 per epoch, per step). Evaluation vocodes whole validation clips and
reports the loss-mel L1 against the real audio, next to the same L1 for Griffin-Lim on the same
mels.

Modules: `state` (train state, optimizer, modules of a config), `segments` (data and the
fine-tune mels), `step` (the train step), `evaluation`; here `train_and_evaluate`.
Inference loads a vocoder run with `jdrum.runs.load_vocoder`.
"""

from __future__ import annotations

import functools

from jdrum.trainers import common
from jdrum.trainers.hifigan import evaluation, segments, state, step


def train_and_evaluate(config, workdir: str) -> state.TrainState:
    """Trains the vocoder of `config` in `workdir`, resuming from its latest checkpoint."""
    models = state.make_models(config, state.steps_per_epoch(config))
    train_mels = valid_mels = None
    if config.data.vqvae_run:
        train_mels = segments.finetune_mels(config, "train", workdir)
        valid_mels = segments.finetune_mels(config, "validation", workdir)
    return common.fit(
        config,
        workdir,
        initial_state=lambda: state.initial_state(config, models),
        train_step=functools.partial(step.train_step, models=models),
        train_data=lambda shard, batch: segments.segments(config, train_mels, None, batch, shard),
        evaluator=lambda mesh: evaluation.Evaluator(config, models.generator, valid_mels, mesh),
        learning_rate=models.optimizer.schedule(),
    )
