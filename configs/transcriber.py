"""Drum transcriber: drum audio → notes (onset, General MIDI key, velocity) of 9 classes.

    python -m jdrum.train --config configs/transcriber.py --workdir runs/NAME/transcriber
    python -m jdrum.train --config configs/transcriber.py:tiny \\
        --workdir runs/tiny/transcriber          # synthstems/demo_mixed on CPU, < 10 minutes

Trains on clip records with drum notes (synthstems: build `synthstems/demo_mixed` for tiny,
`synthstems/default` otherwise; both hold out the soundfont kits of
`synthstems/eval_unseen_kits`). Inference: `jdrum.inference.transcription.load(WORKDIR)`.

Expect (tiny: 2,800 steps, 8.3 minutes on 2 idle CPU cores with start-up and evaluation):
`eval/f1_<class>` at the end, on the 13 validation songs of demo_mixed, 0.87-1.0. On the 32
held-out whole songs of `synthstems/eval` (`jdrum.inference.transcription.evaluate_dataset`)
onset F1 at 50 ms was 0.995 kick, 0.999 snare, 0.955 closed and 0.872 open hi-hat, 0.92 /
0.82 / 0.84 low / mid / high tom, 1.0 crash, 0.994 ride, velocity error 6.3 MIDI steps; on
`eval_unseen_kits` (kits training never heard) 0.97 kick but 0.63 snare and 0.52-0.57 toms.
"""

from __future__ import annotations

import ml_collections

from configs import common


def get_config(arg=None) -> ml_collections.ConfigDict:
    args = common.parse_arg(arg, tiny=False)
    config = ml_collections.ConfigDict()
    config.stage = "transcriber"
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "synthstems/demo_mixed" if args.tiny else "synthstems/default"
    config.data.data_dir = "data/tfds"  # where `python -m jdrum.build_dataset` wrote it
    config.data.stem = "drums"  # the audio the transcriber hears
    config.data.batch_size = 8 if args.tiny else 16  # global, over all devices

    config.model = ml_collections.ConfigDict()
    config.model.hop_length = 512  # mel hop: 86.1 frames/s, 11.6 ms
    config.model.n_mels = 80
    config.model.pitch_fft = 4096  # long STFT window for the toms' pitch
    config.model.pitch_bins = 40  # its lowest bins (0-420 Hz) in every frame; 0: none
    config.model.conv_channels = (8, 16, 32)  # 3x3 convs, each followed by a mel pool by 2
    config.model.dense = 128  # units after the flattened conv features
    config.model.hidden = 96 if args.tiny else 128  # LSTM units per direction
    config.model.num_layers = 1 if args.tiny else 2  # bidirectional LSTM layers
    config.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay f32)

    config.loss = ml_collections.ConfigDict()
    # BCE weight of onset frames (target 1) against the rest, per class (kick, snare, closed
    # and open hi-hat, low, mid and high tom, crash, ride): about 5 x sqrt(kick rate / rate)
    # of the class on synthstems (2 kicks/s, 0.36 open hi-hats, 0.07 of each tom, 0.12
    # crashes), the open hi-hat's raised to 15 (it is told from a closed one by its ring).
    config.loss.pos_weight = (5.0, 5.0, 5.0, 15.0, 25.0, 25.0, 25.0, 20.0, 5.0)
    config.loss.neighbour = 0.5  # onset target of the frames beside an onset's
    config.loss.velocity_weight = 1.0  # squared error of MIDI velocity / 127 at onsets

    config.inference = ml_collections.ConfigDict()  # peak picking and chunks (also at eval)
    config.inference.threshold = 0.5  # onset probability; a float or one per class
    config.inference.min_distance = 2  # frames: notes of a class at least 3 frames (35 ms) apart
    config.inference.chunk_frames = 1024  # frames per chunk of a long song (11.9 s)
    config.inference.context_frames = 128  # frames of context on either side of a chunk (1.5 s)
    config.inference.batch_size = 4  # chunks per call

    config.eval = ml_collections.ConfigDict()
    config.eval.dataset = ""  # whole songs scored at evaluation; "": config.data.dataset
    config.eval.split = "validation"
    config.eval.max_songs = 0  # 0: all

    config.mesh = common.mesh()  # devices: data-parallel, optionally fsdp (jdrum.parallel)

    config.opt = common.optimizer(lr=2e-3 if args.tiny else 1e-3, warmup_steps=50, clip=1.0)
    config.opt.decay_steps = 2_800 if args.tiny else 50_000

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 2_800 if args.tiny else 50_000
    config.train.log_every = 100 if args.tiny else 200
    config.train.eval_every = 0 if args.tiny else 5_000  # 0: evaluate at the end only
    config.train.checkpoint_every = 1_000 if args.tiny else 5_000
    return config
