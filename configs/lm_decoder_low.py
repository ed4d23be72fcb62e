"""LM variant decoder_low — exp 11, lm9: decoder-only prior + low-level beat (no drumless codes).

    python -m jdrum.train --config configs/lm_decoder_low.py --workdir runs/NAME/lm
    python -m jdrum.train --config configs/lm_decoder_low.py:tiny --workdir runs/demo/lm

Reads the token records of `python -m jdrum.tokenize --run runs/NAME`. Expect (tiny, on the
synthstems/demo tokens of `make demo`, a few minutes on 2 CPU cores): `eval/loss_bits` well
below `eval/unigram_bits` (the drum tokens' unigram entropy).
"""

from configs import lm


def get_config(arg=None):
    return lm.get_config("decoder_low", arg)
