"""A drum stem as a General MIDI drum track: `python -m jdrum.transcribe --input DRUMS.wav
--output OUT.mid [--run runs/demo | --transcriber DIR]`.

The stem (any file `jdrum.audio.load` reads: a take of `jdrum.sample`, a user's own drum
recording) is transcribed by a trained transcriber (`--run`: the run's `transcriber/`; or
`--transcriber`: a transcriber workdir) into drum notes (General MIDI keys on channel 10, with
velocities), and written with a tempo map that follows the stem's own beats as madmom's tracker
and default DBN find them, with time signatures from their bar positions, so that a DAW's bars
line up with the audio (`jdrum.inference.midi`). `--round_trip` also renders the MIDI back with
the soundfont and prints how it compares with the stem (`songs.midi_round_trip`).

    python -m jdrum.transcribe --input out/song_take0_drums.wav --output out/song.mid \\
        --run runs/demo

An output folder that does not exist, an unreadable or silent stem, or no trained transcriber
stops with one line, and no .mid is written. `--verbosity 0` shows the libraries' INFO lines.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from jdrum import checkpoint, console
from jdrum.inference import songs

_INPUT = flags.DEFINE_string("input", None, "The drum stem: an audio file.")
_OUTPUT = flags.DEFINE_string("output", None, "The .mid to write (its folder must exist).")
_RUN = flags.DEFINE_string("run", None, "A run directory holding transcriber/.")
_TRANSCRIBER = flags.DEFINE_string("transcriber", None, "A transcriber workdir (instead of --run).")
_ROUND_TRIP = flags.DEFINE_bool(
    "round_trip", False, "Render the MIDI back and compare its onsets and beats with the stem."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not (_INPUT.value and _OUTPUT.value):
        raise app.UsageError("--input and --output are required")
    if bool(_RUN.value) == bool(_TRANSCRIBER.value):
        raise app.UsageError("give one of --run and --transcriber")
    console.quiet_libraries()
    try:
        result = songs.transcribe(
            _INPUT.value,
            _OUTPUT.value,
            _TRANSCRIBER.value or _RUN.value,
            round_trip=_ROUND_TRIP.value,
        )
    except checkpoint.CheckpointError as error:
        # As in jdrum.sample: orbax's abandoned reads may still print at shutdown.
        print(f"jdrum.transcribe: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)
    except (OSError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        sys.exit(f"jdrum.transcribe: {message}")
    bpm = "no tempo" if result["bpm"] is None else f"{result['bpm']:.1f} BPM"
    print(
        f"{result['output']}: {result['notes']} notes, {result['beats']} beats ({bpm}, tempo map"
        f" within {result['tempo_map_error_ms']:.2f} ms), {result['seconds']:.1f} s"
    )
    if "round_trip" in result:
        trip = result["round_trip"]
        print(
            f"rendered back: onset F1 {trip['onset_f1']:.3f} against the stem, beat F1"
            f" {trip['beat_f1']:.3f} against the stem's beats"
        )


if __name__ == "__main__":
    app.run(main)
