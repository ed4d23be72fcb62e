"""Drums for your songs: `python -m jdrum.sample --run DIR --input PATH [PATH …] --output DIR`.

Inputs are files or folders (every wav, flac, ogg, mp3, m4a, aiff inside), of any length,
rate and channel count `jdrum.audio.load` reads. For each input and take k it writes
`<name>_take<k>_drums.wav` (the drum stem, level-matched to the input) and
`<name>_take<k>_mix.wav` (input + drums, never clipped), then `summary.json` and `report.html`
(players, mel spectrograms with the input's and the drums' beats, per-take metrics). An input
that cannot be read is reported and skipped; the others are still processed.

    python -m jdrum.sample --run runs/demo --input song.mp3 --output out/ --num_samples 4

The drum audio comes from the run's `vocoder/` when it has one, else from Griffin-Lim;
`--vocoder griffin-lim` (or `hifigan`) picks one.

Per-take metrics compare the beats tracked on the generated drums with the beats tracked on
the input, both by the madmom tracker and madmom's default DBN over the whole song
(`MEASURE_TRACKER`, `jdrum.beat.dbn.decode`): `beat_f1`, `downbeat_f1` (70 ms), `cmlt`,
`amlt`, `tempo` / `tempo_octave` (median inter-beat interval within 4 %, the second also at
x2 or x1/2; `jdrum.metrics.rhythm_metrics`), plus the stem's level in dBFS. `--verbosity 0`
shows the libraries' INFO lines (`jdrum.console`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import time

import numpy as np
import tqdm
from absl import app, flags

from jdrum import audio, checkpoint, console, metrics, pipeline, report, sampling
from jdrum.beat import dbn, tracking

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aif", ".aiff")
MEASURE_TRACKER = "madmom"  # tracks the input's and the takes' beats for the summary

_RUN = flags.DEFINE_string("run", None, "Run directory (vqvae_drums/, vqvae_drumless/, lm/ ...).")
_INPUT = flags.DEFINE_multi_string("input", None, "Audio files or folders (repeatable).")
_OUTPUT = flags.DEFINE_string("output", None, "Where the wavs, summary.json, report.html go.")
_LM = flags.DEFINE_string("lm", "lm", "The LM's directory inside --run.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 1, "Takes per input, sampled as one batch.")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "Default: the LM run's (0.96).")
_TOP_P = flags.DEFINE_float("top_p", None, "Nucleus probability; default: the LM run's (0.8).")
_TOP_K = flags.DEFINE_integer("top_k", None, "Keep the k likeliest tokens; 0 keeps all.")
_OVERLAP = flags.DEFINE_integer("overlap", None, "Tokens shared by consecutive windows.")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed: the same seed gives the same takes.")
_MAX_RETRIES = flags.DEFINE_integer("max_retries", 2, "Re-samplings of a near-silent take.")
_VOCODER = flags.DEFINE_enum(
    "vocoder",
    "auto",
    list(pipeline.VOCODERS),
    "auto: the run's vocoder/ if it has one, else Griffin-Lim; hifigan: the run's; griffin-lim.",
)


def input_files(paths: list[str]) -> list[pathlib.Path]:
    """The audio files named by `paths` (folders are searched recursively), in order."""
    files = []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            files.extend(found)
        else:
            files.append(path)  # a missing file is reported when it is read
    return files


def tracked_beats(x_L, drums_KxL) -> tuple[np.ndarray, list[np.ndarray]]:
    """(the input's beats (n, 2), [each take's beats]): `MEASURE_TRACKER` on the input and the
    takes in one batch, then madmom's default DBN (`dbn.decode`) on each."""
    stems = np.concatenate([np.asarray(x_L, np.float32)[None], drums_KxL])
    tracker = dataclasses.replace(tracking.load(MEASURE_TRACKER), batch_size=len(stems))
    _, probabilities = tracker(stems)
    beats = [dbn.decode(p) for p in probabilities]
    return beats[0], beats[1:]


def take_metrics(drums_L, beats_Nx2, input_beats_Nx2) -> dict:
    """The rhythm metrics (`metrics.rhythm_metrics`) of a take's beats against the input's,
    and the take's level in dBFS."""
    values = metrics.rhythm_metrics(input_beats_Nx2, beats_Nx2)
    return {**values, "level_dbfs": float(pipeline.dbfs(drums_L))}


def process(pipe, path: pathlib.Path, output: pathlib.Path, settings: dict, bar) -> dict:
    """Samples the takes of one input and writes its wavs; returns its summary entry."""
    entry = {"name": path.stem, "path": str(path), "takes": [], "error": None}
    x = audio.load(path)
    entry["seconds"] = len(x) / audio.SAMPLE_RATE

    def progress(stage, done, total):
        bar.set_postfix_str(f"{path.name}: {stage} {done}/{total}")

    result = pipe.accompany(
        x,
        num_takes=settings["num_samples"],
        seed=settings["seed"],
        config=settings["sampling"],
        max_retries=settings["max_retries"],
        progress=progress,
    )
    progress("beats", 0, 1)
    input_beats, take_beats = tracked_beats(x, result.drums)
    entry["beats"] = input_beats.tolist()
    for k in range(len(result.drums)):
        names = {stem: f"{path.stem}_take{k}_{stem}.wav" for stem in ("drums", "mix")}
        audio.save(output / names["drums"], result.drums[k])
        audio.save(output / names["mix"], result.mix[k])
        entry["takes"].append(
            {
                "take": k,
                **names,
                "beats": take_beats[k].tolist(),
                "metrics": take_metrics(result.drums[k], take_beats[k], input_beats),
                "retries": result.retries[k],
                "silent": result.silent[k],
                "gain_db": float(result.gains_db[k]),
            }
        )
    return entry


def sample(
    run: str, inputs: list[str], output: str, *, lm: str = "lm", vocoder: str = "auto", **settings
) -> dict:
    """Everything `main` does, callable from Python; returns the summary.

    `vocoder`: see `pipeline.Pipeline`. `settings`: num_samples (1), seed (0), max_retries (2),
    and temperature, top_p, top_k, overlap (None: the LM run's `config.sampling`).

    Raises:
      ValueError: num_samples below 1 or max_retries below 0 (before anything is written).
    """
    if settings.get("num_samples", 1) < 1:
        raise ValueError(f"--num_samples must be at least 1, got {settings['num_samples']}")
    if settings.get("max_retries", 2) < 0:
        raise ValueError(f"--max_retries must be at least 0, got {settings['max_retries']}")
    output_dir = pathlib.Path(output)
    output_dir.mkdir(parents=True, exist_ok=True)
    pipe = pipeline.Pipeline(run, lm_dir=lm, vocoder=vocoder)
    settings = {"num_samples": 1, "seed": 0, "max_retries": 2, **settings}
    overrides = {k: settings.pop(k, None) for k in ("temperature", "top_p", "top_k", "overlap")}
    base = pipe.sampling.__dict__ | {k: v for k, v in overrides.items() if v is not None}
    settings["sampling"] = sampling.SamplingConfig(**base)
    summary = {
        "run": run,
        "lm": lm,
        "settings": {
            **settings,
            "sampling": base,
            "tracker": pipe.tracker_name,
            "measured_by": f"{MEASURE_TRACKER} tracker, madmom's default DBN",
        },
        "vocoder": "hifigan" if pipe.has_vocoder else "griffin-lim",
        "inputs": [],
    }
    files = input_files(inputs)
    start = time.perf_counter()
    with tqdm.tqdm(files, desc="inputs", unit="song") as bar:
        for path in bar:
            try:
                entry = process(pipe, path, output_dir, settings, bar)
            except (audio.AudioError, OSError, ValueError) as error:
                message = str(error).splitlines()[0] if str(error) else type(error).__name__
                tqdm.tqdm.write(f"jdrum.sample: skipped {path}: {message}")
                entry = {"name": path.stem, "path": str(path), "error": message, "takes": []}
            summary["inputs"].append(entry)
    summary["seconds"] = time.perf_counter() - start
    with open(output_dir / "summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    summary["report"] = report.write_report(str(output_dir), summary)
    return summary


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not (_RUN.value and _INPUT.value and _OUTPUT.value):
        raise app.UsageError("--run, --input and --output are required")
    console.quiet_libraries()
    try:
        summary = sample(
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
