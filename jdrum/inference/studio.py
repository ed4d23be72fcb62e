"""Drum takes for songs handed in one at a time, in one folder: what the web app serves.

    studio = Studio("runs/demo", workdir="/tmp/jdrum-app")   # loads the run once
    result = studio.accompany("song.wav", {"lm": "lm", "num_takes": 2, "seed": 0})

`python -m jdrum.app` puts a page in front of this. Every request samples with
`songs.process` (the same stages, files and per-take metrics as `python -m jdrum.sample`) into
its own folder `workdir/results/NNN_<name>/`, then draws each take's log-mel spectrogram with
its beats over the upper half and the input's beats over the lower half (`report.plot_mel`).
Nothing is written outside `workdir`.

A request is refused with `StudioError` (one line naming the file) before anything is sampled:
a file type the app does not read, an unreadable, empty or silent file, or a song longer than
`max_seconds`, and bad settings (an unknown LM, a take count outside 1..`max_takes`, guidance
for an LM trained without dropped conditions, a bad prime). A request is cancelled between
sampling windows when its `cancel` event is set (`Cancelled`).

Models load once: the run's default LM with the studio, the others the first time a request
names them; a `Pipeline` keeps its jit programs, so a window length compiles once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil
import threading
import time

import soundfile

from jdrum import audio, runs
from jdrum.inference import pipeline, report, songs

SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a")  # what the upload accepts
MAX_SECONDS = 600.0  # the longest song, by default
MAX_TAKES = 8
SAMPLING_FIELDS = ("temperature", "top_p", "guidance")  # None or missing: the LM's own


class StudioError(ValueError):
    """A request the studio refuses; the message is one line naming the file or setting."""


class Cancelled(Exception):
    """The request was cancelled before it finished."""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:60] or "song"


def _one_line(error: Exception, names: dict | None = None) -> str:
    """The error's first line, with the server's paths replaced by the names users gave
    (`names`: {path: name})."""
    line = str(error).splitlines()[0] if str(error) else type(error).__name__
    for path, name in (names or {}).items():
        line = line.replace(os.fspath(path), name)
    return line


class Studio:
    """A run loaded once, and the folder its results go to (see the module docstring)."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        workdir: str | os.PathLike,
        lm: str | None = None,
        vocoder: str = "auto",
        max_seconds: float = MAX_SECONDS,
        max_takes: int = MAX_TAKES,
    ):
        """Loads the run's LM `lm` (default: `runs.LM_DIR`, else its first LM) and its stages.

        Raises:
          StudioError: not a run directory with an LM, or no LM `lm` in it.
        """
        self.run_dir = os.fspath(run_dir)
        self.workdir = pathlib.Path(workdir).resolve()
        self.max_seconds, self.max_takes, self.vocoder = max_seconds, max_takes, vocoder
        if not os.path.isdir(self.run_dir):
            raise StudioError(f"{self.run_dir}: no such run directory")
        self.lms = runs.lm_names(self.run_dir)
        if not self.lms:
            raise StudioError(f"{self.run_dir}: holds no trained LM (not a run directory)")
        self.default_lm = lm or self.lms[0]
        self._pipes: dict[str, pipeline.Pipeline] = {}
        self._lock = threading.Lock()  # one request samples at a time
        self._count = 0
        self.pipeline(self.default_lm)

    def pipeline(self, lm: str) -> pipeline.Pipeline:
        """The loaded `Pipeline` of one of the run's LMs (loaded on first use)."""
        if lm not in self.lms:
            raise StudioError(f"{self.run_dir}: no LM {lm!r} (it has {', '.join(self.lms)})")
        if lm not in self._pipes:
            try:
                self._pipes[lm] = pipeline.Pipeline(self.run_dir, lm, vocoder=self.vocoder)
            except (FileNotFoundError, ValueError) as error:
                raise StudioError(_one_line(error)) from None
        return self._pipes[lm]

    def read_song(self, path: str | os.PathLike, name: str | None = None):
        """The song's samples (`audio.load`), after its type and length are checked.

        Raises:
          StudioError: (one line naming `name`, default the file's name) a type the app does
            not read, an unreadable, empty or silent file, or one longer than `max_seconds`.
        """
        path = pathlib.Path(path)
        name = name or path.name
        if path.suffix.lower() not in SUFFIXES:
            raise StudioError(f"{name}: not a song file the app reads ({', '.join(SUFFIXES)})")
        limit = f"the limit is {self.max_seconds / 60:g} minutes"
        try:  # the length from the header, before decoding a long file
            seconds = soundfile.info(str(path)).duration
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
            seconds = None  # m4a and the like: measured once decoded
        if seconds is not None and seconds > self.max_seconds:
            raise StudioError(f"{name}: is {seconds / 60:.1f} minutes long; {limit}")
        try:
            x = audio.load(path)
        except audio.AudioError as error:
            raise StudioError(_one_line(error, {path: name})) from None
        if len(x) > self.max_seconds * audio.SAMPLE_RATE:
            raise StudioError(
                f"{name}: is {len(x) / audio.SAMPLE_RATE / 60:.1f} minutes long; {limit}"
            )
        if len(x) < 2 * audio.SAMPLE_RATE:
            raise StudioError(
                f"{name}: is {len(x) / audio.SAMPLE_RATE:.2f} s long; give 2 s or more"
            )
        return x

    def settings(self, request: dict, prime: str | os.PathLike | None = None) -> dict:
        """`songs.process` settings of a request {"lm", "num_takes", "seed", "temperature",
        "top_p", "guidance", "prime_at"} (missing or None: the defaults).

        Raises:
          StudioError: (one line) a bad setting or prime file.
        """
        lm = request.get("lm") or self.default_lm
        num_takes = int(request.get("num_takes") or 1)
        if not 1 <= num_takes <= self.max_takes:
            raise StudioError(f"takes: give 1 to {self.max_takes}, got {num_takes}")
        given = {k: request.get(k) for k in SAMPLING_FIELDS if request.get(k) is not None}
        settings = {"num_samples": num_takes, "seed": int(request.get("seed") or 0)}
        settings["max_retries"] = 2
        if prime is not None:
            settings["prime"] = os.fspath(prime)
            settings["prime_at"] = float(request.get("prime_at") or 0.0)
        try:
            songs.check_settings({**settings, **given})
            config = self.pipeline(lm).sampling_config(**given)
            if prime is not None:
                settings["prime_audio"] = songs.load_prime(prime)
        except (audio.AudioError, ValueError) as error:
            names = {} if prime is None else {prime: pathlib.Path(prime).name}
            raise StudioError(_one_line(error, names)) from None
        return {**settings, "lm": lm, "sampling": config}

    def accompany(
        self,
        song: str | os.PathLike,
        request: dict,
        *,
        prime: str | os.PathLike | None = None,
        name: str | None = None,
        progress=None,
        cancel: threading.Event | None = None,
    ) -> dict:
        """Samples the takes of one song into a new result folder.

        Args:
          song: the song file.
          request: its settings (`settings`).
          prime: a drum audio file to continue (`Pipeline.accompany`), or None.
          name: the song's name to show and to name files by (default: the file's).
          progress: called as progress(stage, done, total), through the stages "codes",
            "beat", "sampling" (per window), "vocoding", "beats" and "pictures" (per take).
          cancel: set to stop the request at the next sampling window.

        Returns:
          The result: {"id", "name", "folder", "seconds", "elapsed", "lm", "settings",
          "vocoder", "beats" (the input's), "primed_tokens" ([start, end) tokens kept from the
          prime, or None), "takes": [{"take", "drums", "mix", "image" (absolute
          paths), "beats", "metrics", "silent", "keep": False}]}; also written as
          `result.json` in its folder.

        Raises:
          StudioError: a bad song, setting or prime (module docstring), before sampling.
          Cancelled: `cancel` was set.
        """
        name = name or pathlib.Path(song).name
        x = self.read_song(song, name)
        settings = self.settings(request, prime)
        pipe = self.pipeline(settings.pop("lm"))
        report_stage = progress or (lambda *args: None)

        def stage(name, done, total):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            report_stage(name, done, total)

        with self._lock:
            results = self.workdir / "results"  # a --workdir may hold earlier sessions' results
            names = os.listdir(results) if results.is_dir() else []
            taken = [int(m[1]) for m in map(re.compile(r"(\d+)_").match, names) if m]
            self._count = max([self._count, *taken]) + 1
            folder = results / f"{self._count:03d}_{_slug(pathlib.Path(name).stem)}"
            folder.mkdir(parents=True)
            start = time.perf_counter()
            try:
                entry = songs.process(pipe, pathlib.Path(song), folder, settings, stage, x=x)
            except audio.AudioError as error:  # the prime against this song
                shutil.rmtree(folder)
                names = {song: name, **({prime: pathlib.Path(prime).name} if prime else {})}
                raise StudioError(_one_line(error, names)) from None
            except BaseException:  # cancelled or failed: no half-written result stays
                shutil.rmtree(folder)
                raise
            stage("pictures", 0, len(entry["takes"]))
            for take in entry["takes"]:
                for stem in ("drums", "mix"):
                    take[stem] = str(folder / take[stem])
                take["image"] = str(folder / f"take{take['take']}.png")
                take["keep"] = False
                drums, _ = soundfile.read(take["drums"], dtype="float32")
                report.plot_mel(
                    drums,
                    take["beats"],
                    f"take {take['take'] + 1}: drums, its beats (white, top) and the song's"
                    " (cyan, bottom)",
                    take["image"],
                    other_beats_Nx2=entry["beats"],
                )
                stage("pictures", take["take"] + 1, len(entry["takes"]))
        sampling = dataclasses.asdict(settings["sampling"])
        result = {
            "id": self._count,
            "name": name,
            "folder": str(folder),
            "seconds": entry["seconds"],
            "elapsed": time.perf_counter() - start,
            "lm": pipe.lm_dir,
            "vocoder": pipe.vocoder,
            "settings": {
                "num_takes": settings["num_samples"],
                "seed": settings["seed"],
                "sampling": sampling,
                **({"prime_at": settings["prime_at"]} if prime is not None else {}),
            },
            "beats": entry["beats"],
            "primed_tokens": entry.get("primed_tokens"),
            "takes": entry["takes"],
        }
        with open(folder / "result.json", "w") as f:
            json.dump(result, f, indent=2)
        return result
