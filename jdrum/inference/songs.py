"""Drums for songs: every input file sampled, written and measured (`sample`), what
`python -m jdrum.sample` runs.

Inputs are files or folders (every wav, flac, ogg, mp3, m4a, aiff inside), of any length,
rate and channel count `jdrum.audio.load` reads. For each input and take k it writes
`<name>_take<k>_drums.wav` (the drum stem, level-matched to the input) and
`<name>_take<k>_mix.wav` (input + drums, never clipped), then `summary.json` and `report.html`
(players, mel spectrograms with the input's and the drums' beats, per-take metrics). An input
that cannot be read is reported and skipped; the others are still processed. With `midi=True`
each take also gets `<name>_take<k>_drums.mid` (`takes_midi`): its drum stem transcribed by the
run's `transcriber/` (`jdrum.inference.transcription`) as a General MIDI drum track whose tempo
map follows the input's beats as the run's tracker finds them (`jdrum.inference.midi`), and its
summary entry the MIDI rendered back and measured against the take (`midi_round_trip`).
`transcribe` does the same for any drum stem, the tempo map following the stem's own beats
(`python -m jdrum.transcribe`).

Per-take metrics compare the beats tracked on the generated drums (the madmom tracker,
`MEASURE_TRACKER`) with the input's beats as the run's own tracker finds them (the one that
conditions its LM, `tracker.json`: a drumless-trained tracker in runs/demo and the authors'
runs, madmom where a run names none), both decoded by madmom's default DBN over the whole song
(`jdrum.beat.dbn.decode`): `beat_f1`, `downbeat_f1` (70 ms), `cmlt`, `amlt`, `tempo` /
`tempo_octave` (median inter-beat interval within 4 %, the second also at x2 or x1/2;
`jdrum.beat.metrics.rhythm_metrics`), plus the stem's level in dBFS. madmom's tracker, trained
on full mixes, often finds half the tempo of a fast drumless song; the drumless tracker does not.

A prime (`prime=PATH`, `prime_at=SECONDS`) is drum audio whose drum codes every take keeps from
that position (`pipeline.Pipeline.accompany`): the first bars someone played, a loop, or a drum
stem of the song. It is read once; an unreadable or silent prime, one shorter than one token
(1024 samples) or a negative `prime_at` stops everything before anything is written. Unlike the
songs, a prime is not resampled or mixed down to match: it must have the sample rate and channel
count of each song it primes (a different format most likely means a file of another session),
and it must lie inside the song from `prime_at`; a song for which this fails is reported and
skipped like an unreadable one.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import numpy as np
import soundfile
import tqdm

from jdrum import audio, runs, sound
from jdrum.beat import conditions, dbn, metrics
from jdrum.inference import midi, pipeline, report, transcription

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aif", ".aiff")
MEASURE_TRACKER = "madmom"  # tracks the input's and the takes' beats for the summary


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


def tracked_beats(drums_KxL) -> list[np.ndarray]:
    """[each take's beats (n, 2)]: `MEASURE_TRACKER` on the takes in one batch, then madmom's
    default DBN (`dbn.decode`) on each."""
    drums = np.asarray(drums_KxL, np.float32)
    tracker = dataclasses.replace(runs.tracker(MEASURE_TRACKER), batch_size=len(drums))
    _, probabilities = tracker(drums)
    return [dbn.decode(p) for p in probabilities]


def is_silent(x_L) -> bool:
    """True when no mel frame of `x_L` is louder than the reference's silence threshold
    (`audio.SILENCE_THRESHOLD_LOG10` on the mean over bands; white noise below about -65 dBFS):
    nothing there to transcribe or track. `audio.is_silent` (half the frames) would reject a
    drum stem that plays only in part of a song."""
    mel = np.asarray(audio.log_mel(np.asarray(x_L, np.float32)[None]))[0]
    return mel.shape[-1] == 0 or bool(mel.mean(axis=0).max() < audio.SILENCE_THRESHOLD_LOG10)


def midi_round_trip(midis, takes_KxL, reference_beats_Nx2, take_beats=None, kit=0) -> list[dict]:
    """How well each take's drum MIDI stands for the take: the MIDI rendered back with the
    soundfont (`midi.render`, kit `kit`, the take's length) and measured beside the take.

    Args:
      midis: K PrettyMIDIs (`midi.drum_midi`), one a take.
      takes_KxL: the takes' audio.
      reference_beats_Nx2: the beats the MIDI's tempo map follows (the input's tracked beats).
      take_beats: [each take's tracked beats (n, 2)] (`tracked_beats`); None: tracked here.
      kit: the soundfont drum kit of the rendering.

    Returns:
      Per take {"notes": drum notes in the MIDI, "tempo_map_error_ms": the largest distance
      of a reference beat from the MIDI's beats (`midi.tempo_map_error`), "onset_f1": onsets of
      the rendering against the take's (`jdrum.sound.onset_f1`, 50 ms), "beat_f1" and
      "take_beat_f1": the beats `tracked_beats` finds in the rendering and in the take, each
      against the reference (`metrics.beat_f1`, 70 ms, as the takes' `beat_f1`)}.
    """
    takes = np.asarray(takes_KxL, np.float32)
    reference = np.asarray(reference_beats_Nx2, np.float64).reshape(-1, 2)
    renders = np.stack([midi.render(m, kit, length=takes.shape[1]) for m in midis])
    rendered_beats = tracked_beats(renders)
    take_beats = tracked_beats(takes) if take_beats is None else take_beats
    return [
        {
            "notes": len(midi.drum_notes(m)),
            "tempo_map_error_ms": 1000 * midi.tempo_map_error(m, reference),
            "onset_f1": sound.onset_f1(render, take),
            "beat_f1": metrics.beat_f1(reference[:, 0], np.reshape(beats, (-1, 2))[:, 0]),
            "take_beat_f1": metrics.beat_f1(reference[:, 0], np.reshape(own, (-1, 2))[:, 0]),
        }
        for m, render, take, beats, own in zip(
            midis, renders, takes, rendered_beats, take_beats, strict=True
        )
    ]


def transcribe(stem, output, transcriber, round_trip: bool = False) -> dict:
    """A drum stem as a drum MIDI (`midi.drum_midi`) whose tempo map follows the stem's own
    beats (`tracked_beats`: madmom's tracker and default DBN), written to `output`: what
    `python -m jdrum.transcribe` runs.

    Args:
      stem: an audio file (`audio.load`: any format, rate and channel count).
      output: the .mid to write; its folder must exist.
      transcriber: a `transcription.Transcriber`, or the path `transcription.load` takes
        (loaded after the stem is read).
      round_trip: also measure the MIDI rendered back against the stem (`midi_round_trip`).

    Returns:
      {"input", "output", "seconds", "notes", "beats", "bpm" (median, None under two beats),
       "tempo_map_error_ms", and with `round_trip` "round_trip": `midi_round_trip`'s entry}.

    Raises:
      FileNotFoundError: (one line) a missing output folder (checked first), or no trained
        transcriber at the path.
      IsADirectoryError: `output` is a folder.
      audio.AudioError: (one line) an unreadable or silent stem (`is_silent`).
      ValueError: the transcriber path holds a run of another stage.
    Nothing is written unless everything succeeds.
    """
    midi.check_output(output)
    x = audio.load(stem, allow_silent=True)
    if is_silent(x):
        raise audio.AudioError(f"{stem}: is silent (no frame above the silence threshold)")
    if not isinstance(transcriber, transcription.Transcriber):
        transcriber = transcription.load(transcriber)
    (beats,) = tracked_beats(x[None])
    song = midi.drum_midi(transcriber.notes(x), beats, end=len(x) / audio.SAMPLE_RATE)
    midi.write_midi(output, song)
    interval = metrics.median_interval(beats[:, 0])
    result = {
        "input": str(stem),
        "output": str(output),
        "seconds": len(x) / audio.SAMPLE_RATE,
        "notes": len(midi.drum_notes(song)),
        "beats": len(beats),
        "bpm": None if interval is None else 60.0 / interval,
        "tempo_map_error_ms": 1000 * midi.tempo_map_error(song, beats),
    }
    if round_trip:
        (result["round_trip"],) = midi_round_trip([song], x[None], beats, [beats])
    return result


def take_metrics(drums_L, beats_Nx2, input_beats_Nx2) -> dict:
    """The rhythm metrics (`metrics.rhythm_metrics`) of a take's beats against the input's,
    and the take's level in dBFS."""
    values = metrics.rhythm_metrics(input_beats_Nx2, beats_Nx2)
    return {**values, "level_dbfs": float(pipeline.dbfs(drums_L))}


def load_prime(path) -> np.ndarray:
    """The prime's samples (`audio.load`: mono, 44.1 kHz).

    Raises:
      audio.AudioError: (one line naming the file) unreadable, silent, or shorter than one token.
    """
    prime = audio.load(path)
    if len(prime) < conditions.TOKEN_HOP:
        raise audio.AudioError(
            f"{path}: the prime of {len(prime)} samples is shorter than one token"
            f" ({conditions.TOKEN_HOP} samples)"
        )
    return prime


def _format(path) -> tuple[int, int]:
    info = soundfile.info(str(path))
    return info.samplerate, info.channels


def check_prime(prime_path, prime_L, prime_at: float, song_path, song_L) -> tuple[int, int]:
    """[start, end) tokens of the prime in the song (`pipeline.prime_tokens`).

    Raises:
      audio.AudioError: (one line naming the prime) a sample rate or channel count other than
        the song's file, or a prime outside the song.
    """
    (prime_rate, prime_channels), (rate, channels) = _format(prime_path), _format(song_path)
    if (prime_rate, prime_channels) != (rate, channels):
        raise audio.AudioError(
            f"{prime_path}: has another sample rate or channel count ({prime_rate} Hz,"
            f" {prime_channels} ch) than the song {song_path} ({rate} Hz, {channels} ch)"
        )
    try:
        return pipeline.prime_tokens(len(song_L), len(prime_L), prime_at)
    except ValueError as error:
        raise audio.AudioError(f"{prime_path}: {error}") from None


def process(
    pipe, path: pathlib.Path, output: pathlib.Path, settings: dict, progress=None, x=None
) -> dict:
    """Samples the takes of one input and writes its wavs; returns its summary entry.

    `settings`: as `sample` keeps them (num_samples, seed, max_retries, sampling, prime,
    prime_at, prime_audio). `progress(stage, done, total)` is called through the stages
    (`Pipeline.accompany`'s, then "beats"); `x`: the input's samples if already read.
    """
    entry = {"name": path.stem, "path": str(path), "takes": [], "error": None}
    x = audio.load(path) if x is None else x
    entry["seconds"] = len(x) / audio.SAMPLE_RATE
    prime = settings.get("prime_audio")
    if prime is not None:
        check_prime(settings["prime"], prime, settings["prime_at"], path, x)
    progress = progress or (lambda *args: None)
    result = pipe.accompany(
        x,
        num_takes=settings["num_samples"],
        seed=settings["seed"],
        config=settings["sampling"],
        max_retries=settings["max_retries"],
        progress=progress,
        prime=prime,
        prime_at=settings.get("prime_at") or 0.0,
    )
    if result.primed is not None:
        entry["primed_tokens"] = list(result.primed)
    progress("beats", 0, 1)
    input_beats = result.beat["beats"]  # the run's tracker on the input, as the LM heard it
    take_beats = tracked_beats(result.drums)
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
    if settings.get("transcriber") is not None:
        progress("midi", 0, 1)
        files = takes_midi(settings["transcriber"], result.drums, input_beats, take_beats)
        for k, (take, (song, measured)) in enumerate(zip(entry["takes"], files, strict=True)):
            take["midi"] = f"{path.stem}_take{k}_drums.mid"
            midi.write_midi(output / take["midi"], song)
            if measured is not None:
                take["midi_metrics"] = measured
    return entry


def takes_midi(transcriber, drums_KxL, input_beats, take_beats) -> list[tuple]:
    """[(PrettyMIDI, round trip)] of every take: its drum stem transcribed, in a MIDI whose tempo
    map follows the input's beats (`midi.drum_midi`), and `midi_round_trip`'s entry (None where
    the soundfont renderer is not installed)."""
    end = np.shape(drums_KxL)[1] / audio.SAMPLE_RATE
    midis = [midi.drum_midi(transcriber.notes(x), input_beats, end=end) for x in drums_KxL]
    if not midi.can_render():
        return [(song, None) for song in midis]
    measured = midi_round_trip(midis, drums_KxL, input_beats, take_beats)
    return list(zip(midis, measured, strict=True))


def check_settings(settings: dict) -> None:
    """Checks the settings of `sample` that need no model.

    Raises:
      ValueError: (one line) num_samples below 1, max_retries below 0, guidance below 0 or not
        finite, prime_at without a prime or negative.
    """
    if settings.get("num_samples", 1) < 1:
        raise ValueError(f"--num_samples must be at least 1, got {settings['num_samples']}")
    if settings.get("max_retries", 2) < 0:
        raise ValueError(f"--max_retries must be at least 0, got {settings['max_retries']}")
    guidance = settings.get("guidance")
    if guidance is not None and not 0 <= guidance < float("inf"):
        raise ValueError(f"--guidance must be a number of at least 0 (1: none), got {guidance}")
    prime_path, prime_at = settings.get("prime"), settings.get("prime_at")
    if prime_at is not None and prime_path is None:
        raise ValueError("--prime_at needs --prime")
    if prime_at is not None and not prime_at >= 0:
        raise ValueError(f"--prime_at must be at least 0 seconds, got {prime_at}")


def sample(
    run: str, inputs: list[str], output: str, *, lm: str = "lm", vocoder: str = "auto", **settings
) -> dict:
    """Takes for every input (module docstring); returns the summary.

    `vocoder`: see `pipeline.Pipeline`. `settings`: num_samples (1), seed (0), max_retries (2),
    temperature, top_p, top_k, overlap, guidance (None: the LM run's `config.sampling`), prime
    (a drum audio file, None: no prime), prime_at (seconds, None: 0) and midi (False; True: a
    drum MIDI of every take by the run's `transcriber/`, `takes_midi`).

    Raises:
      ValueError: num_samples below 1, max_retries below 0, guidance below 0 or for an LM
        trained without dropped conditions, a bad sampling setting, prime_at without a prime or
        negative, or a bad prime file (`audio.AudioError`, `load_prime`), all before anything is
        written.
      FileNotFoundError: (one line) midi for a run without a trained `transcriber/`, before
        anything is sampled or written.
    """
    check_settings(settings)
    prime_path, prime_at = settings.get("prime"), settings.get("prime_at")
    prime_audio = None if prime_path is None else load_prime(prime_path)
    transcriber = transcription.load(run) if settings.get("midi") else None
    if not settings.get("midi"):  # runs without MIDI keep their summary as it was
        settings.pop("midi", None)
    pipe = pipeline.Pipeline(run, lm_dir=lm, vocoder=vocoder)
    settings = {"num_samples": 1, "seed": 0, "max_retries": 2, **settings}
    fields = ("temperature", "top_p", "top_k", "overlap", "guidance")
    settings["sampling"] = pipe.sampling_config(**{k: settings.pop(k, None) for k in fields})
    base = dataclasses.asdict(settings["sampling"])
    output_dir = pathlib.Path(output)
    output_dir.mkdir(parents=True, exist_ok=True)
    if prime_path is not None:
        settings["prime_at"] = prime_at or 0.0
    else:  # unprimed runs keep their summary as it was
        settings.pop("prime", None)
        settings.pop("prime_at", None)
    summary = {
        "run": run,
        "lm": lm,
        "settings": {
            **settings,
            "sampling": base,
            "tracker": pipe.tracker_name,
            "measured_by": (
                f"the input's beats: the run's tracker ({pipe.tracker_name}); the takes':"
                f" the {MEASURE_TRACKER} tracker; both by madmom's default DBN"
            ),
        },
        "vocoder": pipe.vocoder,
        "inputs": [],
    }
    if transcriber is not None:
        summary["settings"]["transcriber"] = transcriber.workdir
    settings["prime_audio"] = prime_audio  # not in the summary
    settings["transcriber"] = transcriber
    files = input_files(inputs)
    start = time.perf_counter()
    with tqdm.tqdm(files, desc="inputs", unit="song") as bar:
        for path in bar:

            def progress(stage, done, total, name=path.name):
                bar.set_postfix_str(f"{name}: {stage} {done}/{total}")

            try:
                entry = process(pipe, path, output_dir, settings, progress)
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
