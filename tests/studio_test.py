"""`jdrum.inference.studio`, what the web app serves, on a tiny untrained run: results in their
own folders, the limits and bad files refused with one line naming the file, cancellation."""

import json
import os
import re
import threading

import numpy as np
import pytest
import soundfile

from jdrum import audio
from jdrum.datasets import synth
from jdrum.inference import studio


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    x = synth.make_song(3, synth.SynthConfig(min_seconds=6, max_seconds=6)).drumless
    path = tmp_path_factory.mktemp("songs") / "my song.wav"
    soundfile.write(path, x[: 5 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)
    return path


@pytest.fixture(scope="module")
def desk(tiny_sampling_run, tmp_path_factory):
    return studio.Studio(tiny_sampling_run, tmp_path_factory.mktemp("app"), max_seconds=8.0)


def test_two_takes_land_in_their_own_folder_with_pictures_and_measures(desk, song):
    stages = []
    first = desk.accompany(song, {"num_takes": 2, "seed": 1}, progress=lambda *a: stages.append(a))
    second = desk.accompany(song, {"num_takes": 2, "seed": 1})
    assert second["id"] == first["id"] + 1 and second["folder"] != first["folder"]
    assert os.path.dirname(first["folder"]) == str(desk.workdir / "results")
    assert len(first["takes"]) == 2 and first["name"] == "my song.wav"
    frames = soundfile.info(str(song)).frames
    for take in first["takes"]:
        for stem in ("drums", "mix", "image"):
            assert take[stem].startswith(first["folder"] + os.sep)
        for stem in ("drums", "mix"):
            info = soundfile.info(take[stem])
            assert (info.frames, info.samplerate) == (frames, audio.SAMPLE_RATE)
        with open(take["image"], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert 0.0 <= take["metrics"]["beat_f1"] <= 1.0 and take["keep"] is False
    assert [s[0] for s in stages if s[1] == 0][:4] == ["codes", "beat", "sampling", "vocoding"]
    assert stages[-1] == ("pictures", 2, 2)
    saved = json.loads(open(os.path.join(first["folder"], "result.json")).read())
    assert saved["settings"]["num_takes"] == 2 and saved["lm"] == "lm"
    # The same seed and settings give the same takes; the takes of a request differ.
    first_takes, second_takes = ([soundfile.read(t["drums"])[0] for t in r["takes"]]
                                 for r in (first, second))  # fmt: skip
    np.testing.assert_array_equal(first_takes[1], second_takes[1])
    assert not np.array_equal(first_takes[0], first_takes[1])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"hello", "notes.txt: not a song file the app reads"),
        ("broken.wav", b"RIFF....WAVEfmt garbage", "broken.wav: not a readable audio file"),
        ("quiet.wav", None, "quiet.wav: is silent"),
        ("long.flac", 9.0, "long.flac: is 0.1 minutes long; the limit is 0.133333 minutes"),
        ("short.wav", 1.0, "short.wav: is 1.00 s long; give 2 s or more"),
    ],
)
def test_bad_songs_are_refused_with_one_line_naming_them(desk, tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        seconds = 3.0 if content is None else content
        x = np.zeros(int(seconds * audio.SAMPLE_RATE), np.float32)
        if content is not None:
            x[::500] = 0.5
        soundfile.write(path, x, audio.SAMPLE_RATE)
    before = sorted(os.listdir(desk.workdir))
    with pytest.raises(studio.StudioError) as error:
        desk.accompany(path, {"num_takes": 1}, name=name)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert str(tmp_path) not in str(error.value)  # the name, not the server's path
    assert sorted(os.listdir(desk.workdir)) == before


@pytest.mark.parametrize(
    "request_, message",
    [
        ({"num_takes": 9}, "takes: give 1 to 8, got 9"),
        ({"lm": "lm_other"}, "no LM 'lm_other' (it has lm)"),
        ({"guidance": 2.0}, "guidance 2 needs an LM trained with dropped conditions"),
        ({"guidance": -1.0}, "--guidance must be a number of at least 0"),
    ],
)
def test_bad_settings_are_refused_before_sampling(desk, song, request_, message):
    with pytest.raises(studio.StudioError, match=re.escape(message)):
        desk.accompany(song, request_)


def test_a_prime_is_kept_and_one_of_another_format_is_refused(desk, song, tmp_path):
    drums = synth.make_song(3, synth.SynthConfig(min_seconds=6, max_seconds=6)).drums
    prime = tmp_path / "groove.wav"
    soundfile.write(prime, drums[: 2 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)
    result = desk.accompany(song, {"num_takes": 1, "prime_at": 1.0}, prime=prime)
    start = round(audio.SAMPLE_RATE / 1024)
    assert result["primed_tokens"] == [start, start + 2 * audio.SAMPLE_RATE // 1024]
    assert result["settings"]["prime_at"] == 1.0
    other = tmp_path / "groove48k.wav"
    soundfile.write(other, drums[: 2 * 48_000], 48_000)
    with pytest.raises(studio.StudioError, match="^groove48k.wav: has another sample rate") as e:
        desk.accompany(song, {"num_takes": 1}, prime=other)
    assert str(tmp_path) not in str(e.value) and "the song my song.wav" in str(e.value)
    with pytest.raises(studio.StudioError, match="runs past the end of the song"):
        desk.accompany(song, {"num_takes": 1, "prime_at": 4.0}, prime=prime)
    with pytest.raises(studio.StudioError, match="prime_at must be at least 0 seconds"):
        desk.accompany(song, {"num_takes": 1, "prime_at": -1.0}, prime=prime)


def test_a_cancelled_request_stops_and_leaves_no_folder(desk, song):
    cancel = threading.Event()

    def progress(stage, done, total):
        if stage == "sampling" and done == 1:
            cancel.set()

    results = desk.workdir / "results"
    before = sorted(os.listdir(results)) if results.exists() else []
    with pytest.raises(studio.Cancelled):
        desk.accompany(song, {"num_takes": 1}, progress=progress, cancel=cancel)
    assert (sorted(os.listdir(results)) if results.exists() else []) == before
    assert desk.accompany(song, {"num_takes": 1})["takes"]  # and the next request runs


def test_a_folder_without_an_lm_is_one_line(tmp_path):
    with pytest.raises(studio.StudioError, match="holds no trained LM"):
        studio.Studio(tmp_path, tmp_path / "app")
    with pytest.raises(studio.StudioError, match="no such run directory"):
        studio.Studio(tmp_path / "missing", tmp_path / "app")
