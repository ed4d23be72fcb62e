"""`python -m jdrum.sample` on a tiny untrained run (`tests/tiny_run.py`): inputs of any length
and format, several takes, a bad file among good ones, and the takes' drum MIDI (`--midi`)."""

import json
import shutil
import subprocess
import sys
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pretty_midi
import pytest
import soundfile
import tiny_run

from configs import vocos
from jdrum import audio, runs
from jdrum.beat import conditions, metrics
from jdrum.datasets import synth
from jdrum.inference import midi, pipeline, songs


@pytest.fixture(scope="module")
def run(tiny_sampling_run):
    return tiny_sampling_run


@pytest.fixture(scope="module")
def drumless():
    song = synth.make_song(7, synth.SynthConfig(min_seconds=12, max_seconds=12))
    return song.drumless


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_folder_with_a_corrupt_file_and_four_takes(run, drumless, tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    soundfile.write(folder / "a.wav", drumless[: 2 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)
    soundfile.write(folder / "b.flac", drumless[: 5 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)
    (folder / "c.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "out"
    summary = songs.sample(run, [str(folder)], str(out), num_samples=4, seed=0, max_retries=1)
    by_name = {e["name"]: e for e in summary["inputs"]}
    assert by_name["c"]["error"] and "c.wav" in by_name["c"]["error"]
    assert "\n" not in by_name["c"]["error"]
    for name, seconds in (("a", 2), ("b", 5)):
        assert by_name[name]["error"] is None and len(by_name[name]["takes"]) == 4
        for k in range(4):
            for stem in ("drums", "mix"):
                x, rate = soundfile.read(out / f"{name}_take{k}_{stem}.wav")
                assert rate == audio.SAMPLE_RATE and len(x) == seconds * audio.SAMPLE_RATE
                assert np.max(np.abs(x)) <= 1.0
    # Each take's rhythm against the input's tracked beats (madmom's default DBN, which finds
    # beats on the drumless input that the REFERENCE §4.3 DBN misses).
    assert len(by_name["b"]["beats"]) >= 4
    for take in by_name["b"]["takes"]:
        assert set(take["metrics"]) == {*metrics.RHYTHM_NAMES, "level_dbfs"}
        assert np.asarray(take["beats"]).reshape(-1, 2).shape[1] == 2
    takes = [soundfile.read(out / f"b_take{k}_drums.wav")[0] for k in range(4)]
    assert not np.allclose(takes[0], takes[1])  # different takes
    assert _summary(out)["inputs"][2]["error"] == by_name["c"]["error"]
    assert (out / "report.html").exists()


def test_stereo_48k_m4a_from_the_command_line(run, drumless, tmp_path):
    av = pytest.importorskip("av")
    stereo = np.stack([drumless[: 4 * 48_000], 0.5 * drumless[: 4 * 48_000]]).astype(np.float32)
    m4a = tmp_path / "stereo.m4a"  # AAC, which libsndfile cannot read (PyAV's FFmpeg does)
    with av.open(str(m4a), "w") as container:
        stream = container.add_stream("aac", rate=48_000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
        frame.sample_rate = 48_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={m4a}"]
    subprocess.run(command + [f"--output={out}"], check=True, timeout=600)
    (entry,) = _summary(out)["inputs"]
    assert entry["error"] is None and entry["seconds"] == pytest.approx(4.0, abs=0.1)
    x, rate = soundfile.read(out / "stereo_take0_mix.wav")
    assert rate == audio.SAMPLE_RATE and x.ndim == 1


def test_the_reference_dbn_is_never_measured_with(run, drumless, tmp_path):
    path = tmp_path / "song.wav"
    soundfile.write(path, drumless[: 6 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)
    with mock.patch.object(conditions, "dbn_high_beats", side_effect=AssertionError("0.65 DBN")):
        summary = songs.sample(run, [str(path)], str(tmp_path / "out"), max_retries=0)
    (entry,) = summary["inputs"]
    assert entry["error"] is None and len(entry["beats"]) >= 6  # 6 s at >= 60 BPM


@pytest.mark.parametrize("value", [0, -1])
def test_fewer_than_one_take_is_a_one_line_error(run, tmp_path, value):
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={tmp_path}"]
    command += [f"--output={tmp_path / 'out'}", f"--num_samples={value}"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"jdrum.sample: --num_samples must be at least 1, got {value}"
    ]
    assert not (tmp_path / "out").exists()


def test_bad_guidance_is_a_one_line_error_before_anything_is_written(run, tmp_path):
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={tmp_path}"]
    command += [f"--output={tmp_path / 'out'}", "--guidance=-1"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "jdrum.sample: --guidance must be a number of at least 0 (1: none), got -1.0"
    ]
    # The tiny run's LM was trained without dropped conditions: guidance would mix in a
    # prediction it never learnt.
    with pytest.raises(ValueError, match=r"lm: guidance 2 needs an LM trained with dropped"):
        songs.sample(run, [str(tmp_path)], str(tmp_path / "out"), guidance=2.0)
    assert not (tmp_path / "out").exists()


def test_nothing_readable_is_an_error_exit(run, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={bad}"]
    result = subprocess.run(command + [f"--output={tmp_path / 'out'}"], capture_output=True)
    assert result.returncode == 1
    assert "skipped" in result.stderr.decode() + result.stdout.decode()


def test_asking_for_a_vocoder_the_run_lacks_is_one_line(run, tmp_path):
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={tmp_path}"]
    command += [f"--output={tmp_path / 'out'}", "--vocoder=hifigan"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"jdrum.sample: {run}: no trained vocoder/ (vocoder='hifigan')"
    )


def test_a_corrupt_checkpoint_is_one_line(run, drumless, tmp_path):
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    step_dir = broken / "lm" / "checkpoints" / "0"
    for path in [p for p in step_dir.glob("state/**/d/*") if p.is_file()]:
        path.write_bytes(b"\x5a" * path.stat().st_size)
    song = tmp_path / "song.wav"
    audio.save(str(song), drumless[: 4 * 44100])
    command = [sys.executable, "-m", "jdrum.sample", f"--run={broken}", f"--input={song}"]
    result = subprocess.run(
        command + [f"--output={tmp_path / 'out'}"], capture_output=True, text=True
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"jdrum.sample: {broken / 'lm' / 'checkpoints'}: checkpoint step 0 "
                               "cannot be read (")  # fmt: skip


@pytest.mark.slow
def test_five_minute_input(run, drumless, tmp_path):
    path = tmp_path / "long.wav"
    long = np.tile(drumless, 26)[: 300 * audio.SAMPLE_RATE]
    soundfile.write(path, long, audio.SAMPLE_RATE)
    summary = songs.sample(run, [str(path)], str(tmp_path / "out"), num_samples=1, seed=0,
                            max_retries=0)  # fmt: skip
    (entry,) = summary["inputs"]
    assert entry["error"] is None
    x, _ = soundfile.read(tmp_path / "out" / "long_take0_drums.wav")
    assert len(x) == 300 * audio.SAMPLE_RATE


def test_auto_uses_the_runs_vocos_vocoder(run, drumless, tmp_path):
    with_vocos = tmp_path / "run"
    shutil.copytree(run, with_vocos)
    config = vocos.get_config("tiny")
    config.model.update(dim=16, intermediate=32, num_layers=2)
    generator = runs.generator_config(config).make()
    params = jax.jit(generator.init)(jax.random.key(0), jnp.zeros((1, 80, 4)))["params"]
    runs.write_vocoder(str(with_vocos / "vocoder"), config, params)
    song = tmp_path / "song.wav"
    soundfile.write(song, drumless[: 2 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)
    summary = songs.sample(str(with_vocos), [str(song)], str(tmp_path / "out"), max_retries=0)
    assert summary["vocoder"] == "vocos" and summary["inputs"][0]["error"] is None
    # The drum audio is the Vocos generator's, with "auto" as with "vocos".
    codes = np.arange(6, dtype=np.int32)[None] % 8
    for name in ("auto", "vocos"):
        pipe = pipeline.Pipeline(str(with_vocos), vocoder=name)
        mel = np.asarray(pipe.codecs["drums"].decode(jnp.asarray(codes)))
        expected = np.asarray(generator.apply({"params": params}, mel))
        np.testing.assert_allclose(pipe.drum_audio(codes), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"vocoder/ is a Vocos vocoder, not HiFi-GAN"):
        pipeline.Pipeline(str(with_vocos), vocoder="hifigan")


def test_midi_of_a_take_on_the_inputs_beats(run, drumless, tmp_path):
    with_transcriber = tmp_path / "run"
    shutil.copytree(run, with_transcriber)
    tiny_run.write_tiny_transcriber(with_transcriber)
    song = tmp_path / "song.wav"
    soundfile.write(song, drumless[: 6 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)  # as above
    out = tmp_path / "out"
    summary = songs.sample(str(with_transcriber), [str(song)], str(out), max_retries=0, midi=True)
    (entry,) = summary["inputs"]
    assert summary["settings"]["transcriber"] == str(with_transcriber / "transcriber")
    input_beats = np.asarray(entry["beats"])  # the run's tracker on the input
    assert len(input_beats) >= 4
    for k, take in enumerate(entry["takes"]):
        assert take["midi"] == f"song_take{k}_drums.mid"
        written = pretty_midi.PrettyMIDI(str(out / take["midi"]))
        assert written.instruments[0].is_drum and len(written.instruments[0].notes) > 0
        assert midi.tempo_map_error(written, input_beats) < 1e-3
        measured = take["midi_metrics"]
        assert measured["tempo_map_error_ms"] < 1
        assert measured["notes"] == len(written.instruments[0].notes)
        assert measured["take_beat_f1"] == take["metrics"]["beat_f1"]
        assert 0 <= measured["onset_f1"] <= 1 and 0 <= measured["beat_f1"] <= 1
    assert _summary(out)["inputs"][0]["takes"][0]["midi"] == "song_take0_drums.mid"


def test_midi_without_a_transcriber_is_one_line_before_sampling(run, tmp_path):
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={tmp_path}"]
    result = subprocess.run(
        command + [f"--output={tmp_path / 'out'}", "--midi"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"jdrum.sample: no trained transcriber in {run}; train one with: python -m jdrum.train"
        f" --config configs/transcriber.py --workdir {run}/transcriber"
    ]
    assert not (tmp_path / "out").exists()
