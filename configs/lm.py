"""The language model (REFERENCE §3): shared by the six `configs/lm_*.py` variants of Table 1.

Not a config file itself. Every variant takes `:tiny` (a CPU-sized model for the demo and tests:
width 64, 10 prior layers, 3 encoder layers, 128-token windows of 16-token blocks, trained on
the synthstems/demo tokens of `make demo` for 625 steps, about 3 minutes on 2 slow CPU cores).

Tiny figures (synthstems/demo, 160 songs, `make demo`'s VQ-VAEs; beat F1 against the true beats
of the 8 shortest synthstems/eval songs, 95 % bootstrap intervals over songs): seq2seq_low's
drums score 0.91 [0.76, 1.00] after 625 steps (seq2seq_nobeat 0.13 [0.07, 0.17]), 0.81
[0.54, 1.00] after 1,250 and 0.80 [0.53, 1.00] after 2,500; the real drums 0.93, drums against
another song's beats 0.30. Longer training buys nothing measurable, so the demo stops at 625.
On 40 songs it over-fits after ~1,000 steps, and its samples do not follow the beat.

The token records are read from `<config.data.tokens>/tokens/<dataset>/` (written by
`python -m jdrum.tokenize --run DIR`); an empty `config.data.tokens` means the parent of the
LM's workdir, so `--workdir runs/NAME/lm` reads `runs/NAME/tokens/`.

Classifier-free guidance: train with `--config.train.drop_beat=P --config.train.drop_drumless=P
--config.train.drop_both=P` (each train example loses that condition with that probability),
then sample with `--guidance W` (`jdrum.inference.sampling`; README "Guidance").

Timbre augmentation (for drumless inputs whose EQ, dynamics, room or level training never saw):
tokenize with `python -m jdrum.tokenize --run DIR --dataset D --augment N` (N augmented drumless
views per train record, `jdrum.augment`) and train with `--config.data.augment=P`, the
probability of reading a view instead of the plain drumless codes (default 0: off).
"""

from __future__ import annotations

import ml_collections

from configs import common

# Table-1 variant → (drumless encoder?, beat level, prior attn_order, reference experiment).
VARIANTS = {
    "seq2seq_low": (True, "low", 8, "exp1 / lm1"),
    "seq2seq_mid": (True, "mid", 8, "exp7 / lm7"),
    "seq2seq_high": (True, "high", 8, "exp5 / lm5"),
    "seq2seq_nobeat": (True, "none", 8, "exp2 / lm2"),
    "decoder_low": (False, "low", 2, "exp11 / lm9"),
    "decoder_nobeat": (False, "none", 2, "exp12 / lm10"),
}


def get_config(variant: str, arg: str | None) -> ml_collections.ConfigDict:
    args = common.parse_arg(arg, tiny=False)
    encoder, beat, attn_order, _ = VARIANTS[variant]
    tiny = args.tiny
    config = ml_collections.ConfigDict()
    config.stage = "lm"
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.tokens = ""  # run holding tokens/; "": the parent of the workdir
    config.data.dataset = "synthstems/demo" if tiny else "jukedrummer"  # tokenized NAME[/CONFIG]
    config.data.batch_size = 16  # reference: 16
    # Probability of training on an augmented drumless view of a record (per record and epoch;
    # needs tokens written with `python -m jdrum.tokenize ... --augment N`); 0: never.
    config.data.augment = 0.0

    config.model = ml_collections.ConfigDict()
    config.model.vocab_size = 32  # drum codebook size
    config.model.prime_vocab_size = 1024  # drumless codebook size
    config.model.n_ctx = 128 if tiny else 1024  # tokens per window (2**17 / 2**20 samples)
    config.model.width = 64 if tiny else 512
    config.model.heads = 2
    config.model.block_len = 16 if tiny else 64  # tokens per attention block
    config.model.prior_layers = 10 if tiny else 20  # causal drum prior
    config.model.prime_layers = 3 if tiny else 9  # drumless encoder
    config.model.attn_order = attn_order  # 8: cross-attention every 10th layer; 2: none
    config.model.encoder = encoder  # seq2seq (True) or decoder-only (False)
    config.model.beat = beat  # beat conditioning: "none", "low", "mid" or "high"
    # The high level's DBN: madmom's defaults ("madmom"; the REFERENCE §4.3 DBN, "reference",
    # finds no beat on any drumless test clip of synthstems/demo, see jdrum/beat/conditions.py).
    config.model.high_dbn = "madmom"
    config.model.beat_features = 50  # low-level embedding width (the tracker's 2 x 25)
    config.model.attn_mult = 0.25  # attention width / width
    config.model.mlp_mult = 1.0  # MLP width / width
    config.model.emb_dropout = 0.1 if tiny else 0.2
    config.model.attn_dropout = 0.1 if tiny else 0.3
    config.model.resid_dropout = 0.1 if tiny else 0.3
    config.model.init_scale = 0.7
    config.model.beat_init_std = 0.02  # mid/high embeddings (reference: 1.0, REFERENCE §10.14)
    config.model.remat_policy = "none"  # "none", "full" or "dots"
    config.model.dtype = "float32"  # compute dtype; "bfloat16" keeps float32 parameters

    config.mesh = common.mesh()  # devices: data-parallel (and optional fsdp) axes

    # Reference: Adam 3e-4, 100 warm-up steps, no clipping (REFERENCE §3.8, §10.12).
    config.opt = common.optimizer(lr=1e-3 if tiny else 3e-4, warmup_steps=100, clip=1.0)

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 625 if tiny else 200_000
    config.train.log_every = 25 if tiny else 200
    config.train.eval_every = 625 if tiny else 5_000
    config.train.checkpoint_every = 625 if tiny else 5_000
    # Classifier-free guidance: the probabilities that a train example loses its beat condition
    # only, its drumless condition only, or both (`jdrum.trainers.lm`). Sampling with
    # `guidance` != 1 needs an LM trained with some of them > 0. 0: the reference's training.
    config.train.drop_beat = 0.0
    config.train.drop_drumless = 0.0
    config.train.drop_both = 0.0

    # Sampling defaults read by `python -m jdrum.sample` (REFERENCE §5.1).
    config.sampling = ml_collections.ConfigDict()
    config.sampling.temperature = 0.96
    config.sampling.top_k = 0
    config.sampling.top_p = 0.8
    config.sampling.overlap = 64 if tiny else 512  # tokens shared by consecutive windows
    config.sampling.guidance = 1.0  # classifier-free guidance weight W; 1: none (the reference)
    return config
