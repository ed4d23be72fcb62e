"""Priming ("continue my groove", issue 17): `Pipeline.accompany(prime=..., prime_at=...)` and
`python -m jdrum.sample --prime PATH --prime_at SECONDS` on a tiny untrained run
(`tests/tiny_run.py`): the prime's codes are kept in every take, and bad primes are one line."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile

from jdrum import audio
from jdrum.beat import conditions
from jdrum.datasets import synth
from jdrum.inference import pipeline, songs

RATE = audio.SAMPLE_RATE


@pytest.fixture(scope="module")
def run(tiny_sampling_run):
    return tiny_sampling_run


@pytest.fixture(scope="module")
def song():
    return synth.make_song(7, synth.SynthConfig(min_seconds=12, max_seconds=12))


@pytest.fixture(scope="module")
def pipe(run):
    return pipeline.Pipeline(run)


def test_a_drum_stem_of_the_whole_song_is_kept_in_every_take(pipe, song):
    x, stem = song.drumless[: 4 * RATE], song.drums[: 4 * RATE]
    result = pipe.accompany(x, num_takes=2, seed=0, prime=stem)
    expected = pipe.codes(stem, "drums")
    assert result.primed == (0, len(expected)) == (0, conditions.num_tokens(len(x)))
    np.testing.assert_array_equal(result.codes, np.stack([expected, expected]))
    # The drum audio is the decoded prime (Griffin-Lim here, run as the same batch), at each
    # take's gain.
    raw = result.drums / 10 ** (result.gains_db[:, None] / 20)
    decoded = pipe.drum_audio(result.codes)
    np.testing.assert_allclose(raw[:, : decoded.shape[1]], decoded, atol=1e-4)


def test_a_prime_in_the_middle_is_kept_and_the_takes_before_it_unchanged(pipe, song):
    x = song.drumless[: 5 * RATE]
    prime, prime_at = song.drums[RATE : 2 * RATE], 1.5  # one second of drums at 1.5 s
    unprimed = pipe.accompany(x, num_takes=2, seed=3, max_retries=0).codes
    result = pipe.accompany(x, num_takes=2, seed=3, max_retries=0, prime=prime, prime_at=prime_at)
    start = round(prime_at * RATE / conditions.TOKEN_HOP)  # token 65
    end = start + conditions.num_tokens(len(prime))
    assert result.primed == (start, end)
    np.testing.assert_array_equal(
        result.codes[:, start:end], np.stack([pipe.codes(prime, "drums")] * 2)
    )
    np.testing.assert_array_equal(result.codes[:, :start], unprimed[:, :start])
    # (That the tokens after the prime see it is tested on a non-degenerate LM in
    # sampling_test.py: this run's untrained LM barely depends on its past.)
    assert not np.array_equal(result.codes[0], result.codes[1])


def test_prime_positions_and_their_errors():
    hop, second = conditions.TOKEN_HOP, RATE
    assert pipeline.prime_tokens(10 * second, 2 * hop, 0.0) == (0, 2)
    assert pipeline.prime_tokens(10 * second, 2 * hop + 100, 1.0) == (43, 45)  # 43.07 tokens
    assert pipeline.prime_tokens(10 * hop, 10 * hop, 0.0) == (0, 10)  # a stem as long as the song
    cases = [
        ((10 * second, 1000, 0.0), r"the prime of 1000 samples is shorter than one token \(1024"),
        ((10 * second, 2 * hop, -0.5), r"prime_at must be at least 0 seconds, got -0.5"),
        ((10 * second, 2 * hop, 10.0), r"prime_at 10.0 s is outside the song \(10.00 s\)"),
        ((10 * second, 3 * second, 8.0), r"the prime \(3.00 s\) from 8.0 s runs past the end of"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            pipeline.prime_tokens(*args)


def test_a_silent_prime_array_is_refused(pipe, song):
    with pytest.raises(ValueError, match="the prime is silent"):
        pipe.accompany(song.drumless[: 2 * RATE], prime=np.zeros(RATE, np.float32))


def test_a_prime_that_does_not_fit_a_song_skips_only_that_song(run, song, tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    prime = tmp_path / "prime.wav"
    soundfile.write(prime, song.drums[:RATE], RATE)  # 1 s, mono, 44.1 kHz
    soundfile.write(folder / "a_short.wav", song.drumless[: 2 * RATE], RATE)
    soundfile.write(folder / "b_past_end.wav", song.drumless[: int(3.5 * RATE)], RATE)
    soundfile.write(folder / "c_48k.wav", song.drumless[: 6 * 48_000], 48_000)
    stereo = np.stack([song.drumless[: 6 * RATE]] * 2, axis=1)
    soundfile.write(folder / "d_stereo.wav", stereo, RATE)
    soundfile.write(folder / "e_good.wav", song.drumless[: 5 * RATE], RATE)
    out = tmp_path / "out"
    summary = songs.sample(
        run, [str(folder)], str(out), prime=str(prime), prime_at=3.0, max_retries=0
    )
    errors = {e["name"]: e["error"] for e in summary["inputs"]}
    assert errors == {
        "a_short": f"{prime}: prime_at 3.0 s is outside the song (2.00 s)",
        "b_past_end": f"{prime}: the prime (1.00 s) from 3.0 s runs past the end of the song"
        " (3.50 s)",
        "c_48k": f"{prime}: has another sample rate or channel count (44100 Hz, 1 ch) than the"
        f" song {folder / 'c_48k.wav'} (48000 Hz, 1 ch)",
        "d_stereo": f"{prime}: has another sample rate or channel count (44100 Hz, 1 ch) than"
        f" the song {folder / 'd_stereo.wav'} (44100 Hz, 2 ch)",
        "e_good": None,
    }
    (good,) = [e for e in summary["inputs"] if not e["error"]]
    assert good["primed_tokens"] == [129, 172]
    assert summary["settings"]["prime"] == str(prime) and summary["settings"]["prime_at"] == 3.0
    assert "prime_audio" not in summary["settings"]
    x, rate = soundfile.read(out / "e_good_take0_drums.wav")
    assert rate == RATE and len(x) == 5 * RATE


def _cli(run, tmp_path, *flags):
    song = tmp_path / "song.wav"
    if not song.exists():
        soundfile.write(song, np.sin(np.arange(2 * RATE) / 10.0) * 0.3, RATE)
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={song}"]
    command += [f"--output={tmp_path / 'out'}", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "case", ["missing", "unreadable", "silent", "shorter_than_a_token", "negative", "no_prime"]
)
def test_bad_primes_are_one_line_before_anything_is_written(run, tmp_path, case):
    prime = tmp_path / "prime.wav"
    expected = {
        "missing": f"{prime}: no such file",
        "unreadable": f"{prime}: not a readable audio file (",
        "silent": f"{prime}: is silent (every sample is zero)",
        "shorter_than_a_token": f"{prime}: the prime of 1000 samples is shorter than one token"
        " (1024 samples)",
        "negative": "--prime_at must be at least 0 seconds, got -1.0",
        "no_prime": "--prime_at needs --prime",
    }[case]
    if case == "unreadable":
        prime.write_bytes(b"RIFF....WAVEfmt garbage")
    elif case in ("silent", "shorter_than_a_token", "negative"):
        length = 1000 if case == "shorter_than_a_token" else RATE
        soundfile.write(prime, np.full(length, 0.0 if case == "silent" else 0.5), RATE)
    flags = [] if case == "no_prime" else [f"--prime={prime}"]
    flags += ["--prime_at=-1"] if case == "negative" else []
    flags += ["--prime_at=1"] if case == "no_prime" else []
    result = _cli(run, tmp_path, *flags)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jdrum.sample: {expected}"), result.stderr
    assert not (tmp_path / "out").exists()
