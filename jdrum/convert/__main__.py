"""`python -m jdrum.convert`: the authors' PyTorch checkpoints as jdrum run directories.

    python -m jdrum.convert --official ckpt/ --exp 1 --out runs/official_exp1
    python -m jdrum.convert --vqvae ckpt/vq1_target.pkl --stem drums --out runs/official/vqvae_drums
    python -m jdrum.convert --lm ckpt/exp1.pkl --out runs/official/lm

The run configs around the converted weights are those of `configs/converted.py` (the
paper-size configs of `configs/vqvae.py`, `configs/lm.py` and `configs/hifigan_v1.py`).
"""

from __future__ import annotations

from absl import app, flags

from configs.converted import BASE_CONFIGS
from jdrum.convert import official

_OFFICIAL = flags.DEFINE_string("official", None, "Folder with the authors' files.")
_EXP = flags.DEFINE_integer("exp", 1, "Official experiment: 1, 2, 11 or 12 (with --official).")
_VQVAE = flags.DEFINE_string("vqvae", None, "One official VQ-VAE file (vq1_target.pkl, ...).")
_STEM = flags.DEFINE_enum("stem", "drums", ["drums", "drumless"], "Which VQ-VAE the file holds.")
_LM = flags.DEFINE_string("lm", None, "One official LM file (exp1.pkl, exp11.pkl).")
_OUT = flags.DEFINE_string("out", None, "Run directory to write, e.g. runs/official_exp1.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _OUT.value or sum(map(bool, (_OFFICIAL.value, _VQVAE.value, _LM.value))) != 1:
        raise app.UsageError(
            "give --out and one of --official DIR --exp N, --vqvae FILE --stem S, --lm FILE"
        )
    try:
        if _OFFICIAL.value:
            official.convert_official(_OFFICIAL.value, _EXP.value, _OUT.value, BASE_CONFIGS)
        elif _VQVAE.value:
            official.convert_vqvae(_VQVAE.value, _STEM.value, _OUT.value, BASE_CONFIGS)
        else:
            official.convert_lm(_LM.value, _OUT.value, BASE_CONFIGS)
    except (ValueError, ImportError, OSError) as error:
        raise SystemExit(f"jdrum.convert: {error}") from None
    print(f"wrote {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
