"""`python -m jdrum.transcribe` on a synthesized drum stem with a tiny (untrained) transcriber:
the notes are the transcriber's, the tempo map follows the stem's own beats; bad input is one
line and writes no .mid."""

import json
import subprocess
import sys

import numpy as np
import pretty_midi
import pytest
import soundfile
import tiny_run

from jdrum import audio
from jdrum.beat import metrics
from jdrum.datasets import synth
from jdrum.inference import midi, songs, transcription


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory holding only a tiny untrained transcriber/."""
    run_dir = tmp_path_factory.mktemp("run")
    tiny_run.write_tiny_transcriber(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def song():
    return synth.make_song(3, synth.SynthConfig(min_seconds=10, max_seconds=10))


@pytest.fixture(scope="module")
def stem(song, tmp_path_factory):
    path = tmp_path_factory.mktemp("stem") / "drums.wav"
    soundfile.write(path, song.drums, audio.SAMPLE_RATE)
    return path


def _transcribe(*flags):
    command = [sys.executable, "-m", "jdrum.transcribe", *map(str, flags)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_a_drum_stem_becomes_a_drum_midi_on_its_own_beats(run, song, stem, tmp_path):
    output = tmp_path / "drums.mid"
    result = _transcribe(
        f"--input={stem}", f"--output={output}", f"--transcriber={run}/transcriber"
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith(f"{output}: ") and " notes, " in line
    written = pretty_midi.PrettyMIDI(str(output))
    (drums,) = written.instruments
    assert drums.is_drum
    x = audio.load(stem)
    expected = transcription.load(run).notes(x)
    got = midi.drum_notes(written)
    assert len(got) == len(expected) > 0
    np.testing.assert_allclose(got[:, 0], expected[:, 0], atol=1e-3)  # within a tick or two
    assert sorted(map(tuple, got[:, 1:])) == sorted(
        map(tuple, np.column_stack([expected[:, 1], np.clip(np.rint(expected[:, 2]), 1, 127)]))
    )
    # The tempo map: the stem's beats as madmom tracks them, which are the song's true beats.
    (beats,) = songs.tracked_beats(x[None])
    assert midi.tempo_map_error(written, beats) < 1e-3
    assert metrics.beat_f1(song.beats[:, 0], written.get_beats()) > 0.9
    assert written.text_events[-1].time == pytest.approx(len(x) / audio.SAMPLE_RATE, abs=1e-3)


def test_the_round_trip_renders_the_notes_back(run, stem, tmp_path):
    result = songs.transcribe(stem, tmp_path / "drums.mid", run, round_trip=True)
    trip = result["round_trip"]
    assert result["tempo_map_error_ms"] < 1 and trip["tempo_map_error_ms"] < 1
    assert trip["notes"] == result["notes"] > 0
    assert 0 <= trip["onset_f1"] <= 1 and 0 <= trip["beat_f1"] <= 1
    assert trip["take_beat_f1"] == 1.0  # the stem against its own beats


# Runs `jdrum.transcribe.main` once per argv of sys.argv[1] (JSON) in one process (one import
# of jax instead of one per case); prints [[exit code or message, stderr], ...] as JSON.
_MAIN_PER_ARGV = """
import contextlib, io, json, sys
from absl import flags
from jdrum import transcribe
results = []
for argv in json.loads(sys.argv[1]):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["jdrum.transcribe", *argv])
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            transcribe.main(["jdrum.transcribe"])
            code = 0
        except SystemExit as error:
            code = error.code
    results.append([code, stderr.getvalue()])
print(json.dumps(results))
"""


def test_bad_input_is_one_line_and_writes_nothing(run, stem, tmp_path):
    broken, silent = tmp_path / "broken.wav", tmp_path / "silent.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    noise = 1e-4 * np.random.default_rng(0).standard_normal(3 * audio.SAMPLE_RATE)  # -80 dBFS
    soundfile.write(silent, noise, audio.SAMPLE_RATE, subtype="FLOAT")
    output, nowhere = tmp_path / "out.mid", tmp_path / "nowhere" / "out.mid"
    cases = {
        f"{broken}: not a readable audio file (": [broken, output, run],
        f"{silent}: is silent (no frame above the silence threshold)": [silent, output, run],
        f"{nowhere.parent}: no such folder (for {nowhere})": [stem, nowhere, run],
        f"no trained transcriber in {tmp_path}; train one with: ": [stem, output, tmp_path],
    }
    argvs = [[f"--input={i}", f"--output={o}", f"--run={r}"] for i, o, r in cases.values()]
    command = [sys.executable, "-c", _MAIN_PER_ARGV, json.dumps(argvs)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for expected, (code, stderr) in zip(cases, json.loads(result.stdout), strict=True):
        # sys.exit(message): at the top of `python -m jdrum.transcribe` Python prints the
        # message on stderr and exits with status 1.
        assert isinstance(code, str) and code.startswith(f"jdrum.transcribe: {expected}")
        assert "\n" not in code and not stderr.strip(), (code, stderr)
    assert not list(tmp_path.rglob("*.mid"))
