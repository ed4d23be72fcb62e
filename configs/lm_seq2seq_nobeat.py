"""LM variant seq2seq_nobeat — exp 2, lm2: drumless encoder, no beat information.

    python -m jdrum.train --config configs/lm_seq2seq_nobeat.py --workdir runs/NAME/lm
    python -m jdrum.train --config configs/lm_seq2seq_nobeat.py:tiny --workdir runs/demo/lm

Reads the token records of `python -m jdrum.tokenize --run runs/NAME`. Expect (tiny, on the
synthstems/demo tokens of `make demo`, a few minutes on 2 CPU cores): `eval/loss_bits` well
below `eval/unigram_bits` (the drum tokens' unigram entropy).
"""

from configs import lm


def get_config(arg=None):
    return lm.get_config("seq2seq_nobeat", arg)
