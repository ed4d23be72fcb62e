"""The authors' files as jdrum run directories: one stage (`convert_vqvae`, `convert_lm`,
`convert_vocoder`) or a whole run for sampling (`convert_official`), written with
`jdrum.runs.write_*` around the run configs of `BaseConfigs`.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

from jdrum import runs
from jdrum.convert import da2, hifigan, lm, vqvae
from jdrum.models import transformer

# --exp N → (LM file stem, jdrum LM variant). The authors distribute exp1 and exp11.
OFFICIAL_EXPERIMENTS = {
    1: ("exp1", "seq2seq_low"),
    2: ("exp2", "seq2seq_nobeat"),
    11: ("exp11", "decoder_low"),
    12: ("exp12", "decoder_nobeat"),
}
_SUFFIXES = (".pkl", ".pth", ".pt", ".npz", "")


def _find(directory: pathlib.Path, *names: str) -> pathlib.Path:
    """The first of `names` (each tried with the checkpoint suffixes) under `directory`."""
    for name in names:
        for suffix in _SUFFIXES:
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return path
    raise FileNotFoundError(f"{directory}: none of {', '.join(names)} (.pkl/.pth/.npz)")


@dataclasses.dataclass(frozen=True)
class BaseConfigs:
    """The run configs that converted weights are written with, each call a fresh one; the
    model fields then come from the converted file. They are the experiment files of
    `configs/`, which only entry points load (`python -m jdrum.convert` passes them)."""

    vqvae: Callable[[str, int], Any]  # (stem, codebook size) -> a VQ-VAE run config
    lm: Callable[[str], Any]  # an LM variant of configs/lm.py -> an LM run config
    vocoder: Callable[[], Any]  # -> a HiFi-GAN run config


def convert_vqvae(path: str, stem: str, out: str, configs: BaseConfigs) -> None:
    """An official VQ-VAE file (`vq1_target.pkl`: drums, `vq1_others.pkl`: drumless) as a
    jdrum run directory `out` (what `python -m jdrum.tokenize` and sampling read)."""
    model_config, variables, stats = vqvae.load_official_vqvae(path)
    config = configs.vqvae(stem, model_config["codebook_size"])
    for key in ("width", "latent", "down", "up", "commit_beta"):
        config.model[key] = model_config[key]
    runs.write_vqvae(out, config, variables, stats)


def lm_variant(config: transformer.LMConfig) -> str:
    """The configs/lm.py variant of an LM's architecture, e.g. "seq2seq_low"."""
    kind = "seq2seq_" if config.encoder else "decoder_"
    return kind + {"none": "nobeat"}.get(config.beat, config.beat)


def convert_lm(path: str, out: str, configs: BaseConfigs, variant: str | None = None) -> None:
    """An official LM file (`exp1.pkl`, `exp11.pkl`, ...) as a jdrum LM run directory, its
    config the `variant`'s (default: the file's architecture) with the file's sizes."""
    lm_config, variables = lm.load_official_lm(path)
    config = configs.lm(variant or lm_variant(lm_config))
    for field in dataclasses.fields(lm_config):
        config.model[field.name] = getattr(lm_config, field.name)
    config.sampling.overlap = lm_config.n_ctx // 2
    runs.write_lm(out, config, variables)


def convert_vocoder(path: str, out: str, configs: BaseConfigs) -> None:
    """The official vocoder file as a jdrum run directory `out` (a `vocoder` stage:
    `jdrum.runs.load_vocoder` and `jdrum.inference.vocode` read it)."""
    model_config, variables = hifigan.load_official_vocoder(path, weight_norm=True)
    config = configs.vocoder()
    for key, value in model_config.items():
        config.model[key] = value
    runs.write_vocoder(out, config, variables["params"])


def convert_official(directory: str, exp: int, out: str, configs: BaseConfigs) -> str:
    """The authors' files in `directory` as a complete run directory `out` for sampling.

    Reads `vq1_target` (drum VQ-VAE), `vq1_others` (drumless VQ-VAE), `exp<N>` (the LM),
    `vocoder/generator` (or `hifigan/generator`, `generator`) and `RNNBeatProc.pth` (DA2
    tracker), each as .pkl/.pth (torch) or .npz, and writes `vqvae_drums/`,
    `vqvae_drumless/`, `lm/`, `vocoder/`, and the tracker's "nodrum" head as
    `tracker_da2.npz` named in `tracker.json` (`da2.write_tracker`).
    """
    if exp not in OFFICIAL_EXPERIMENTS:
        raise ValueError(
            f"--exp {exp}: the official experiments are {sorted(OFFICIAL_EXPERIMENTS)}"
        )
    root, run = pathlib.Path(directory), pathlib.Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    lm_name, variant = OFFICIAL_EXPERIMENTS[exp]
    sources = {
        "drums": _find(root, "vq1_target"),
        "drumless": _find(root, "vq1_others"),
        "lm": _find(root, lm_name),
        "vocoder": _find(root, "vocoder/generator", "hifigan/generator", "generator"),
        "tracker": _find(root, "RNNBeatProc"),
    }
    for stem, directory in runs.VQVAE_DIRS.items():
        convert_vqvae(str(sources[stem]), stem, str(run / directory), configs)
    convert_lm(str(sources["lm"]), str(run / runs.LM_DIR), configs, variant)
    convert_vocoder(str(sources["vocoder"]), str(run / runs.VOCODER_DIR), configs)
    da2.write_tracker(sources["tracker"], run)
    return str(run)
