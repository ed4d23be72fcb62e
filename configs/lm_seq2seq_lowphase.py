"""LM variant seq2seq_lowphase — beyond the paper: seq2seq_low plus beat-phase features.

    python -m jdrum.train --config configs/lm_seq2seq_lowphase.py --workdir runs/NAME/lm_lowphase
    python -m jdrum.train --config configs/lm_seq2seq_lowphase.py:tiny \
        --workdir runs/demo/lm_seq2seq_lowphase

The beat condition is "low+phase": the low-level tracker embedding (50) and, per token, sin and
cos of the beat phase (harmonics 1-3), of the bar phase, and log2(BPM / 120), from the DBN
beats of the input (`jdrum.beat.conditions.phase_features`; the token records' `beat_high`, so
the tokens of `python -m jdrum.tokenize --run runs/NAME` serve as they are). No reference
checkpoint exists for it. Expect (tiny, on the synthstems/demo tokens of `make demo`):
`eval/loss_bits` well below `eval/unigram_bits`, as seq2seq_low.
"""

from configs import lm


def get_config(arg=None):
    return lm.get_config("seq2seq_lowphase", arg)
