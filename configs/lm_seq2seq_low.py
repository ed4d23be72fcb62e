"""LM variant seq2seq_low — exp 1, lm1: drumless encoder + low-level beat (the paper's best).

    python -m jdrum.train --config configs/lm_seq2seq_low.py --workdir runs/NAME/lm
    python -m jdrum.train --config configs/lm_seq2seq_low.py:tiny --workdir runs/demo/lm

Reads the token records of `python -m jdrum.tokenize --run runs/NAME`. Expect (tiny, on the
synthstems/demo tokens of `make demo`, a few minutes on 2 CPU cores): `eval/loss_bits` well
below `eval/unigram_bits` (the drum tokens' unigram entropy).
"""

from configs import lm


def get_config(arg=None):
    return lm.get_config("seq2seq_low", arg)
