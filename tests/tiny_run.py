"""A complete, untrained sampling run directory without training, for tests of the whole pipeline.

    make_tiny_run(tmp_path / "run", data_dir)                      # vqvae_*/ and lm/
    make_tiny_run(run, data_dir, ("seq2seq_low", "decoder_nobeat"))  # + lm_decoder_nobeat/
    write_tiny_transcriber(run)                                    # + transcriber/ (untrained)

The two VQ-VAEs and the LMs are randomly initialised (no training) and written with
`jdrum.runs.write_*`, so `jdrum.inference.pipeline.Pipeline`, `jdrum.sample` and
`jdrum.evaluate` read them like any trained run. Each VQ-VAE's mel statistics are those of a
few train clips of the dataset and its codebook is initialised from their encodings (the lazy
init of a first training step), so different codes decode to different mels of roughly the
dataset's level, and the Griffin-Lim audio made from them (there is no `vocoder/`) differs from
take to take. Model sizes follow the
tiny configs, shrunk to width 16 and one layer pattern per stack; the LM windows are `n_ctx`
tokens (default 128: one 2**17-sample clip of synthstems/tiny).
"""

from __future__ import annotations

import os

import jax
import numpy as np

from configs import lm as lm_configs
from configs import transcriber as transcriber_configs
from configs import vqvae_drumless, vqvae_drums
from jdrum import audio, data, runs
from jdrum.trainers import lm, vqvae

DATASET = "synthstems/tiny"
WIDTH = 16  # VQ-VAE and LM width
STATS_CLIPS = 4  # train clips behind each VQ-VAE's mel statistics and codebook


def build_dataset(data_dir) -> str:
    """Builds synthstems/tiny into `data_dir` (once; later calls reuse it) and returns its name."""
    data.builder(DATASET, os.fspath(data_dir)).download_and_prepare()
    return DATASET


def lm_dir_name(index: int, variant: str) -> str:
    """The directory of the `index`-th LM of `make_tiny_run`: `lm`, then `lm_<variant>`."""
    return "lm" if index == 0 else f"lm_{variant}"


def tiny_lm_config(variant: str, run_dir, dataset: str = DATASET, n_ctx: int = 128):
    """configs/lm.py `variant`:tiny at width 16, `n_ctx`-token windows of 16-token blocks, and
    one layer pattern per stack (10 prior layers with cross-attention, else 3; 3 encoder)."""
    config = lm_configs.get_config(variant, "tiny")
    config.data.tokens, config.data.dataset = os.fspath(run_dir), dataset
    prior_layers = 10 if config.model.attn_order == 8 else 3  # one pattern of layer kinds
    config.model.update(
        width=WIDTH, n_ctx=n_ctx, block_len=16, prior_layers=prior_layers, prime_layers=3
    )
    config.sampling.overlap = n_ctx // 2
    return config


def _vqvae_variables(config, stats: audio.MelStats, clips_BxL: np.ndarray, seed: int) -> dict:
    """Initial VQ-VAE variables whose codebook is drawn from the encodings of `clips_BxL`."""
    model = vqvae.make_model(config)
    state = vqvae._initial_state(config, model, stats)
    mel = stats.normalise(np.asarray(audio.log_mel(audio.from_pcm16(clips_BxL))))

    @jax.jit
    def first_codebook(params, codebook, mel_BxMxT, key):
        variables = {"params": params, "codebook": codebook}
        _, updates = model.apply(
            variables, mel_BxMxT, train=True, mutable=["codebook"], rngs={"codebook": key}
        )
        return updates["codebook"]

    codebook = first_codebook(state.params, state.codebook, mel, jax.random.key(seed))
    return {"params": state.params, "codebook": codebook}


def make_tiny_run(
    run_dir,
    data_dir,
    variants=("seq2seq_low",),
    *,
    dataset: str = DATASET,
    n_ctx: int = 128,
    seed: int = 0,
) -> dict[str, str]:
    """Writes `vqvae_drums/`, `vqvae_drumless/` and one LM per variant into `run_dir`.

    Args:
      run_dir: the run directory (created).
      data_dir: where `dataset` is built (its first train clips give the mel statistics and the
        codebooks).
      variants: configs/lm.py variants; the first LM goes to `lm/`, the others to
        `lm_<variant>/`.
      dataset: the built dataset NAME/CONFIG.
      n_ctx: LM window in tokens.
      seed: initialisation seed of every model.

    Returns:
      {LM directory name: variant}, in the order written.
    """
    run_dir, data_dir = os.fspath(run_dir), os.fspath(data_dir)
    names = [lm_dir_name(i, v) for i, v in enumerate(variants)]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"variants {variants!r}: need one or more, each after the first once")
    source = data.data_source(dataset, "train", data_dir)
    records = [source[i] for i in range(min(STATS_CLIPS, len(source)))]
    for stem, module in (("drums", vqvae_drums), ("drumless", vqvae_drumless)):
        config = module.get_config("tiny")
        config.seed = seed
        config.data.update(dataset=dataset, data_dir=data_dir, stats_clips=STATS_CLIPS)
        config.data.batch_size = STATS_CLIPS
        config.model.update(width=WIDTH, latent=WIDTH)
        stats = vqvae.compute_mel_stats(config)
        clips = np.stack([np.asarray(r[stem], np.int16) for r in records])
        variables = _vqvae_variables(config, stats, clips, seed)
        runs.write_vqvae(os.path.join(run_dir, runs.VQVAE_DIRS[stem]), config, variables, stats)

    for name, variant in zip(names, variants, strict=True):
        config = tiny_lm_config(variant, run_dir, dataset, n_ctx)
        config.seed = seed
        state = lm._initial_state(config, lm.make_model(config))  # noqa: SLF001
        runs.write_lm(os.path.join(run_dir, name), config, {"params": state.params})
    return dict(zip(names, variants, strict=True))


def write_tiny_transcriber(run_dir, seed: int = 0) -> str:
    """Writes an untrained transcriber into `run_dir`/transcriber/ (configs/transcriber.py:tiny
    with two 4-channel convs, 16 dense units and 8 LSTM units, 512-frame chunks) and returns its
    path. Its notes are those of random weights: right in number and format, wrong in content."""
    config = transcriber_configs.get_config("tiny")
    config.seed = seed
    config.model.update(conv_channels=(4, 4), dense=16, hidden=8)
    config.inference.update(chunk_frames=512, context_frames=64)
    model_config = runs.transcriber_config(config)
    frames = np.zeros((1, 8, model_config.num_features), np.float32)  # mel bands + pitch bins
    variables = jax.jit(model_config.make().init)(jax.random.key(seed), frames)
    workdir = os.path.join(os.fspath(run_dir), runs.TRANSCRIBER_DIR)
    runs.write_transcriber(workdir, config, variables)
    return workdir
