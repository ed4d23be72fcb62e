"""Drums for your songs: `python -m jdrum.sample --run DIR --input PATH [PATH …] --output DIR`.

For each input (files or folders, any length, rate and channel count) and take k it writes
`<name>_take<k>_drums.wav` and `<name>_take<k>_mix.wav`, then `summary.json` and `report.html`;
an input that cannot be read is reported and skipped (`jdrum.inference.songs`).

    python -m jdrum.sample --run runs/demo --input song.mp3 --output out/ --num_samples 4

The drum audio comes from the run's `vocoder/` (HiFi-GAN V1 or Vocos, whichever it holds) when
it has one, else from Griffin-Lim; `--vocoder griffin-lim` picks Griffin-Lim, and `--vocoder
hifigan` or `vocos` asks for the run's vocoder and stops with one line if it is of the other kind.

`--prime drums.wav [--prime_at SECONDS]` continues a groove: every take keeps the prime's drum
codes from that position (default 0) and the rest is sampled to continue it; the prime must have
each song's sample rate and channel count and lie inside it (`jdrum.inference.songs`).

`--guidance W` samples with classifier-free guidance (`jdrum.inference.sampling`): W > 1 follows
the beat and the drumless input more closely, 0 <= W < 1 less, 1 (the default) is plain
sampling. It needs an LM trained with dropped conditions (`config.train.drop_*` in
`configs/lm.py`); other LMs stop with one line.

`--midi` also writes `<name>_take<k>_drums.mid` beside each take's wavs: the take's drum stem
transcribed by the run's `transcriber/` into a General MIDI drum track whose tempo map follows
the input's beats (as the run's tracker finds them, the beats the LM played to), with time
signatures from their bar positions, so that the bars in a DAW line up with the song
(`jdrum.inference.midi`); summary.json gives each take's MIDI rendered back and measured
against it ("midi_metrics"). A run without a trained transcriber stops with one line before
anything is sampled. `python -m jdrum.transcribe` does the same for any drum stem.

Per-take metrics compare the beats tracked on the drums with those of the input.
`--verbosity 0` shows the libraries' INFO lines (`jdrum.console`).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from jdrum import checkpoint, console
from jdrum.inference import pipeline, songs

_RUN = flags.DEFINE_string("run", None, "Run directory (vqvae_drums/, vqvae_drumless/, lm/ ...).")
_INPUT = flags.DEFINE_multi_string("input", None, "Audio files or folders (repeatable).")
_OUTPUT = flags.DEFINE_string("output", None, "Where the wavs, summary.json, report.html go.")
_LM = flags.DEFINE_string("lm", "lm", "The LM's directory inside --run.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 1, "Takes per input, sampled as one batch.")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "Default: the LM run's (0.96).")
_TOP_P = flags.DEFINE_float("top_p", None, "Nucleus probability; default: the LM run's (0.8).")
_TOP_K = flags.DEFINE_integer("top_k", None, "Keep the k likeliest tokens; 0 keeps all.")
_OVERLAP = flags.DEFINE_integer("overlap", None, "Tokens shared by consecutive windows.")
_GUIDANCE = flags.DEFINE_float(
    "guidance", None, "Classifier-free guidance weight W >= 0 (1: none); default: the LM run's."
)
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed: the same seed gives the same takes.")
_MAX_RETRIES = flags.DEFINE_integer("max_retries", 2, "Re-samplings of a near-silent take.")
_PRIME = flags.DEFINE_string(
    "prime", None, "Drum audio every take keeps from --prime_at and continues (same format)."
)
_PRIME_AT = flags.DEFINE_float("prime_at", None, "Where --prime starts in each song, seconds.")
_MIDI = flags.DEFINE_bool(
    "midi", False, "Also write <name>_take<k>_drums.mid by the run's transcriber/."
)
_VOCODER = flags.DEFINE_enum(
    "vocoder",
    "auto",
    list(pipeline.VOCODERS),
    "auto: the run's vocoder/ (HiFi-GAN or Vocos) if it has one, else Griffin-Lim; hifigan, "
    "vocos: the run's, an error if it is of the other kind; griffin-lim.",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not (_RUN.value and _INPUT.value and _OUTPUT.value):
        raise app.UsageError("--run, --input and --output are required")
    console.quiet_libraries()
    try:
        summary = songs.sample(
            _RUN.value,
            _INPUT.value,
            _OUTPUT.value,
            lm=_LM.value,
            vocoder=_VOCODER.value,
            num_samples=_NUM_SAMPLES.value,
            seed=_SEED.value,
            max_retries=_MAX_RETRIES.value,
            temperature=_TEMPERATURE.value,
            top_p=_TOP_P.value,
            top_k=_TOP_K.value,
            overlap=_OVERLAP.value,
            guidance=_GUIDANCE.value,
            prime=_PRIME.value,
            prime_at=_PRIME_AT.value,
            midi=_MIDI.value,
        )
    except checkpoint.CheckpointError as error:
        # orbax's abandoned reads of the bad step may still print while the interpreter
        # shuts down; this line says everything, so the process ends here.
        print(f"jdrum.sample: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"jdrum.sample: {error}") from None
    done = [e for e in summary["inputs"] if not e["error"]]
    failed = len(summary["inputs"]) - len(done)
    print(f"{len(done)} inputs done, {failed} skipped; report: {summary['report']}")
    if not done:
        raise SystemExit(1)


if __name__ == "__main__":
    app.run(main)
