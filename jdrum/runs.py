"""Run directories (DESIGN §5): what each stage folder holds, and how inference reads it.

    runs/NAME/
      vqvae_drums/ vqvae_drumless/   the two VQ-VAEs     `load_vqvae`    `write_vqvae`
      lm/ (or lm_<variant>/ ...)     an LM               `load_lm`       `write_lm`
      vocoder/                       a vocoder, optional `load_vocoder`  `write_vocoder`
      tracker.json                   {"tracker": NAME}, optional: `run_tracker_name`
      transcriber/                   a drum transcriber  `load_transcriber` `write_transcriber`
      tokens/<dataset>/              token records (`jdrum.datasets.tokens`)

Every stage folder holds `config.json` (`write_config`, `read_config`) and `checkpoints/<step>/`
(orbax, `jdrum.checkpoint`). A trainer checkpoints its whole train state; loading for
inference restores only the fields it needs, against templates built from the model config
(`checkpoint.restore_fields`): a VQ-VAE's `params`, `codebook` and mel statistics, an LM's
`params`, a tracker's and a transcriber's `params`, a vocoder's `generator`
(weight-normalised for HiFi-GAN). `write_*` save exactly those fields, e.g. for weights
converted from the reference (`jdrum.convert`).

A vocoder run's `config.model.generator` names its generator (`GENERATORS`): "hifigan_v1"
(`jdrum.models.hifigan`; also every run written before the field existed) or "vocos"
(`jdrum.models.vocos`). `load_vocoder` builds whichever it names.

Trackers by name (`tracker`): "madmom" (madmom's 8 downbeat BLSTMs in JAX, the weights of the
installed madmom package; CC BY-NC-SA 4.0), "run:DIR" (a tracker run trained by
`python -m jdrum.train --config configs/tracker_*.py`) or "da2:FILE" (the official DA2 tracker
`RNNBeatProc.pth`, read with torch, or a `.npz` of its state_dict; its "nodrum" head).
"""

from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jdrum import audio, checkpoint, frozen, torch_io
from jdrum.beat import features, network, tracking, weights
from jdrum.models import codec, hifigan, transcriber, transformer, vocos, vqvae

VQVAE_DIRS = {"drums": "vqvae_drums", "drumless": "vqvae_drumless"}
LM_DIR = "lm"
VOCODER_DIR = "vocoder"
TRACKER_FILE = "tracker.json"
DEFAULT_TRACKER = "madmom"  # the tracker of the synthstems builds
CHECKPOINTS = "checkpoints"


def checkpoint_dir(workdir: str | os.PathLike) -> str:
    return os.path.join(os.fspath(workdir), CHECKPOINTS)


def write_config(config, workdir: str) -> None:
    """`workdir/config.json`: the run's full configuration (written by process 0)."""
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def read_config(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
    path = os.path.join(os.fspath(workdir), "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir}: no config.json (not a run directory)")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


# ----------------------------------------------------------------------------- model configs


CONDITION_DROPS = ("drop_beat", "drop_drumless", "drop_both")  # an LM's config.train


def condition_drops(config) -> tuple[float, float, float]:
    """(beat only, drumless only, both): the probabilities with which an LM run drops its
    conditions in training (`CONDITION_DROPS` of `config.train`, 0 when absent, as in runs
    made before classifier-free guidance); all 0: the LM cannot be sampled with guidance.

    Raises:
      ValueError: a negative probability or a sum above 1.
    """
    probs = tuple(float(config.train.get(name, 0.0)) for name in CONDITION_DROPS)
    if min(probs) < 0 or sum(probs) > 1:
        names = "/".join(CONDITION_DROPS)
        raise ValueError(f"config.train.{names} must be >= 0 and sum to at most 1, got {probs}")
    return probs


def vqvae_config(config) -> vqvae.VQVAEConfig:
    return frozen.from_mapping(vqvae.VQVAEConfig, config.model)


def lm_config(config) -> transformer.LMConfig:
    return frozen.from_mapping(transformer.LMConfig, config.model)


def tracker_config(config) -> network.TrackerConfig:
    return frozen.from_mapping(network.TrackerConfig, config.model)


# config.model.generator -> the frozen config of a vocoder's generator.
GENERATORS = {"hifigan_v1": hifigan.GeneratorConfig, "vocos": vocos.VocosConfig}
DEFAULT_GENERATOR = "hifigan_v1"  # runs whose config.model has no `generator` field
GeneratorConfig = hifigan.GeneratorConfig | vocos.VocosConfig
Generator = hifigan.Generator | vocos.Vocos


def generator_name(config) -> str:
    """`config.model.generator` (default "hifigan_v1"), checked against `GENERATORS`."""
    name = config.model.get("generator", DEFAULT_GENERATOR)
    if name not in GENERATORS:
        raise ValueError(f"unknown vocoder generator {name!r}; known: {', '.join(GENERATORS)}")
    return name


def generator_config(config) -> GeneratorConfig:
    """The frozen config of the generator that `config.model.generator` names."""
    return frozen.from_mapping(GENERATORS[generator_name(config)], config.model)


# --------------------------------------------------------------------- inference templates


def _abstract_init(model, *inputs, **kwargs):
    return jax.eval_shape(functools.partial(model.init, **kwargs), jax.random.key(0), *inputs)


def vqvae_fields(model: vqvae.VQVAE) -> dict:
    """Shapes of the fields a VQ-VAE checkpoint holds for inference."""
    mel = jax.ShapeDtypeStruct((1, model.n_mels, 64), jnp.float32)
    variables = _abstract_init(model, mel, train=False)
    stats = jax.ShapeDtypeStruct((model.n_mels,), jnp.float32)
    return {
        "params": variables["params"],
        "codebook": variables["codebook"],
        "mel_mean": stats,
        "mel_std": stats,
    }


def lm_fields(config: transformer.LMConfig) -> dict:
    return {"params": _abstract_init(config.make(), *config.example_inputs())["params"]}


def tracker_fields(model: network.BeatTracker) -> dict:
    inputs = jax.ShapeDtypeStruct((1, 8, features.NUM_FEATURES), jnp.float32)
    return {"params": _abstract_init(model, inputs)}  # a tracker state's params are variables


def vocoder_fields(generator: Generator) -> dict:
    """The generator parameters as trained and checkpointed (HiFi-GAN: weight-normalised)."""
    mel = jax.ShapeDtypeStruct((1, generator.n_mels, 4), jnp.float32)
    return {"generator": _abstract_init(generator, mel)["params"]}


# ------------------------------------------------------------------------------------ loading


def load_vqvae(workdir: str | os.PathLike):
    """(model, variables {"params", "codebook"}, MelStats) of a VQ-VAE run."""
    model = vqvae_config(read_config(workdir)).make()
    restored = checkpoint.restore_fields(checkpoint_dir(workdir), vqvae_fields(model))
    variables = {"params": restored["params"], "codebook": restored["codebook"]}
    stats = audio.MelStats(np.asarray(restored["mel_mean"]), np.asarray(restored["mel_std"]))
    return model, variables, stats


def load_lm(workdir: str | os.PathLike):
    """(model, variables {"params"}, run config) of an LM run (its `config.sampling` holds the
    sampling defaults)."""
    config = read_config(workdir)
    lm = lm_config(config)
    restored = checkpoint.restore_fields(checkpoint_dir(workdir), lm_fields(lm))
    return lm.make(), {"params": restored["params"]}, config


def load_tracker(workdir: str | os.PathLike):
    """(model, variables {"params"}) of a tracker run."""
    model = tracker_config(read_config(workdir)).make()
    restored = checkpoint.restore_fields(checkpoint_dir(workdir), tracker_fields(model))
    return model, restored["params"]


def load_vocoder(workdir: str | os.PathLike):
    """(generator, {"params"}) of a vocoder run, for inference: the generator its config names
    (`generator_name`), HiFi-GAN's with its weight norm folded."""
    generator_cfg = generator_config(read_config(workdir))
    template = vocoder_fields(generator_cfg.make(weight_norm=True))
    restored = checkpoint.restore_fields(checkpoint_dir(workdir), template)
    params = jax.tree.map(np.asarray, hifigan.fold_weight_norm(restored["generator"]))
    return generator_cfg.make(weight_norm=False), {"params": params}


def vocoder_generator(workdir: str | os.PathLike) -> str:
    """The generator name (a key of `GENERATORS`) of the vocoder run `workdir`."""
    return generator_name(read_config(workdir))


def has_vocoder(run_dir: str | os.PathLike | None) -> bool:
    """Whether `run_dir/vocoder` holds a vocoder checkpoint."""
    if not run_dir:
        return False
    directory = checkpoint_dir(os.path.join(os.fspath(run_dir), VOCODER_DIR))
    return os.path.isdir(directory) and any(d.isdigit() for d in os.listdir(directory))


def lm_names(run_dir: str | os.PathLike) -> list[str]:
    """The LM folders of a run directory (a `config.json` with sampling settings and a
    checkpoint), `LM_DIR` first, then by name."""
    run_dir = os.fspath(run_dir)
    names = []
    for name in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []:
        workdir = os.path.join(run_dir, name)
        if latest_step(workdir) is None or not os.path.exists(os.path.join(workdir, "config.json")):
            continue
        if "sampling" in read_config(workdir):
            names.append(name)
    return sorted(names, key=lambda name: (name != LM_DIR, name))


def latest_step(workdir: str | os.PathLike) -> int | None:
    """The newest checkpoint step of a stage folder (None: none yet)."""
    directory = checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        return None
    return max((int(d) for d in os.listdir(directory) if d.isdigit()), default=None)


# ------------------------------------------------------------------------------------ writing


def _write(workdir: str, config, fields: dict) -> None:
    write_config(config, workdir)
    checkpoint.save_fields(checkpoint_dir(workdir), fields)


def write_vqvae(workdir: str, config, variables, stats: audio.MelStats) -> None:
    """A VQ-VAE run holding given weights (config.json + step 0 with the inference fields).

    Raises:
      ValueError: the variables do not fit `config.model`.
    """
    model = vqvae_config(config).make()
    fields = {
        "params": variables["params"],
        "codebook": variables["codebook"],
        "mel_mean": np.asarray(stats.mean, np.float32),
        "mel_std": np.asarray(stats.std, np.float32),
    }
    checkpoint.check_fits(f"VQ-VAE weights for {workdir}", vqvae_fields(model), fields)
    _write(workdir, config, fields)


def write_lm(workdir: str, config, variables) -> None:
    """An LM run holding given weights (see `write_vqvae`)."""
    fields = {"params": variables["params"]}
    checkpoint.check_fits(f"LM weights for {workdir}", lm_fields(lm_config(config)), fields)
    _write(workdir, config, fields)


def write_vocoder(workdir: str, config, generator_params) -> None:
    """A vocoder run holding given generator params (see `write_vqvae`): weight-norm params
    for HiFi-GAN, plain ones for Vocos.

    Raises:
      ValueError: the params do not fit `config.model` (e.g. folded instead of weight-norm).
    """
    fields = {"generator": generator_params}
    template = vocoder_fields(generator_config(config).make(weight_norm=True))
    what = f"generator params for {workdir}"
    if generator_name(config) == "hifigan_v1":
        what += " (weight-norm v, g, bias expected)"
    checkpoint.check_fits(what, template, fields)
    _write(workdir, config, fields)


# ----------------------------------------------------------------------------------- trackers


def run_tracker_name(run_dir: str | os.PathLike) -> str:
    """The tracker a run's LM was trained with: `run_dir/tracker.json`'s name (a relative path
    in it is relative to the run directory), else `DEFAULT_TRACKER`."""
    run_dir = os.fspath(run_dir)
    path = os.path.join(run_dir, TRACKER_FILE)
    if not os.path.exists(path):
        return DEFAULT_TRACKER
    with open(path) as f:
        name = json.load(f)["tracker"]
    kind, sep, location = name.partition(":")
    if sep and not os.path.isabs(location):
        name = f"{kind}:{os.path.join(run_dir, location)}"
    return name


def da2_tracker_variables(path: str | os.PathLike):
    """The official DA2 tracker file (`RNNBeatProc.pth`: a bare state_dict of 202 entries) as
    `BeatTracker(peephole=False, head="da2")` variables of its "nodrum" head, the part
    JukeDrummer uses (REFERENCE §4.2). An `.npz` holding the state_dict, bare or under
    `param/` (the reference fixture's layout), works without torch."""
    state_dict = torch_io.read_checkpoint(path)
    return weights.da2_nodrum_params(state_dict.get("param", state_dict))


@functools.lru_cache(maxsize=4)
def tracker(name: str) -> tracking.Tracker:
    """The tracker called `name`: "madmom", "run:DIR" or "da2:FILE" (module docstring)."""
    if name == "madmom":
        return tracking.Tracker(name, weights.load_madmom_downbeat_ensemble())
    kind, sep, location = name.partition(":")
    if sep and kind == "run":
        return tracking.Tracker(name, load_tracker(location)[1])
    if sep and kind == "da2":
        return tracking.Tracker(name, da2_tracker_variables(location))
    raise ValueError(f"unknown tracker {name!r}: 'madmom', 'run:DIR' or 'da2:FILE'")


def load_codec(workdir: str | os.PathLike) -> codec.Codec:
    """A VQ-VAE run as a `Codec` (audio ↔ codes ↔ log10 mels)."""
    return codec.Codec(*load_vqvae(workdir))


# -------------------------------------------------------------------------------- transcriber

TRANSCRIBER_DIR = "transcriber"  # runs/NAME/transcriber/: a drum transcriber, optional


def transcriber_config(config) -> transcriber.TranscriberConfig:
    return frozen.from_mapping(transcriber.TranscriberConfig, config.model)


def transcriber_fields(model: transcriber.Transcriber, num_features: int) -> dict:
    frames = jax.ShapeDtypeStruct((1, 8, num_features), jnp.float32)
    return {"params": _abstract_init(model, frames)}  # a transcriber state's params are variables


def load_transcriber(workdir: str | os.PathLike):
    """(model, variables {"params"}, run config) of a transcriber run (its `config.model`:
    `transcriber_config`; `config.inference`: peak picking and chunks)."""
    config = read_config(workdir)
    model_config = transcriber_config(config)
    model = model_config.make()
    fields = transcriber_fields(model, model_config.num_features)
    restored = checkpoint.restore_fields(checkpoint_dir(workdir), fields)
    return model, restored["params"], config


def write_transcriber(workdir: str, config, variables) -> None:
    """A transcriber run holding given variables {"params": ...} (see `write_vqvae`)."""
    model_config = transcriber_config(config)
    fields = {"params": variables}
    template = transcriber_fields(model_config.make(), model_config.num_features)
    checkpoint.check_fits(f"transcriber weights for {workdir}", template, fields)
    _write(workdir, config, fields)
