"""LM variant seq2seq_mid — exp 7, lm7: drumless encoder + mid-level beat (beat peaks).

    python -m jdrum.train --config configs/lm_seq2seq_mid.py --workdir runs/NAME/lm
    python -m jdrum.train --config configs/lm_seq2seq_mid.py:tiny --workdir runs/demo/lm

Reads the token records of `python -m jdrum.tokenize --run runs/NAME`. Expect (tiny, on the
synthstems/demo tokens of `make demo`, a few minutes on 2 CPU cores): `eval/loss_bits` well
below `eval/unigram_bits` (the drum tokens' unigram entropy).
"""

from configs import lm


def get_config(arg=None):
    return lm.get_config("seq2seq_mid", arg)
