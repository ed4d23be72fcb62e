"""Tests of jdrum.inference.report: the HTML page and spectrogram images of a sampling summary."""

from __future__ import annotations

import html
import os
import re
import struct

import numpy as np
import pytest

from jdrum import audio
from jdrum.inference import report

SR = audio.SAMPLE_RATE
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def clicks(seconds: float, bpm: float, freq: float, seed: int) -> np.ndarray:
    """Decaying sine clicks on a beat grid over a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = 0.01 * rng.standard_normal(n).astype(np.float32)
    t = np.arange(int(0.08 * SR)) / SR
    click = 0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.02)
    for start in np.arange(0, seconds, 60 / bpm):
        i = int(start * SR)
        x[i : i + len(click)] += click[: n - i]
    return x


def png_size(path: str) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; asserts the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    out = root / "out"
    out.mkdir()
    seconds = 3.0
    song = clicks(seconds, 120, 300, 0)
    audio.save(root / "my song.wav", song)
    beats = [[t, (i % 4) + 1] for i, t in enumerate(np.arange(0, seconds, 0.5))]
    takes = []
    for k in range(2):
        drums = clicks(seconds, 120, 2000 + 1000 * k, k + 1)
        names = {stem: f"my song_take{k}_{stem}.wav" for stem in ("drums", "mix")}
        audio.save(out / names["drums"], drums)
        audio.save(out / names["mix"], np.clip(song + drums, -1, 1))
        takes.append(
            {
                "take": k,
                **names,
                "beats": beats[::2] if k else beats,
                "metrics": {
                    "beat_f1": 0.8125 - 0.5 * k,
                    "downbeat_f1": 0.4375,
                    "level_dbfs": -21.25,
                },
                "retries": k,
                "silent": bool(k),
                "gain_db": 3.25 - k,
            }
        )
    summary = {
        "run": "runs/demo",
        "lm": "lm",
        "settings": {"num_samples": 2, "seed": 0, "sampling": {"temperature": 0.96}},
        "vocoder": "griffin-lim",
        "inputs": [
            {
                "name": "my song",
                "path": str(root / "my song.wav"),
                "seconds": seconds,
                "error": None,
                "beats": beats,
                "takes": takes,
            },
            {
                "name": "broken <file>",
                "path": str(root / "broken.mp3"),
                "error": 'broken.mp3: not a readable audio file (<bad> & "header")',
                "takes": [],
            },
        ],
    }
    path = report.write_report(str(out), summary)
    return out, summary, path


def test_report_html_names_every_file_and_value(written):
    out, summary, path = written
    assert path == os.path.join(str(out), "report.html")
    page = open(path, encoding="utf-8").read()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # No network resources or scripts: every src / href is relative.
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and not any(re.match(r"[a-z]+:|//|/", link) for link in links)
    assert "<script" not in page
    for take in summary["inputs"][0]["takes"]:
        for stem in ("drums", "mix"):
            quoted = take[stem].replace(" ", "%20")
            assert f'<audio controls preload="none" src="{quoted}">' in page
            assert html.escape(take[stem]) in page
        for value in take["metrics"].values():
            assert f"<td>{value:.3f}</td>" in page
        assert f"{take['gain_db']:+.1f}" in page
    assert "<td>yes</td>" in page and "<td>no</td>" in page  # silence flags
    assert html.escape(summary["inputs"][1]["error"]) in page
    assert "<bad>" not in page and "broken &lt;file&gt;" in page
    assert "0:03.0" in page  # the duration
    for name in ("beat_f1", "downbeat_f1", "level_dbfs", "retries", "gain dB"):
        assert name in page


def test_report_images_are_valid_pngs(written):
    out, _, path = written
    page = open(path, encoding="utf-8").read()
    images = re.findall(r'<img src="([^"]+)"', page)
    # The input, and drums + mix of two takes; none for the failed input.
    assert len(images) == 5
    assert all(src.startswith(f"{report.FILES_DIR}/") for src in images)
    for src in images:
        file = out / src
        assert file.exists()
        width, height = png_size(str(file))
        assert report.MIN_WIDTH_PX <= width <= report.MAX_WIDTH_PX
        assert 100 <= height <= 400
    import matplotlib.image

    pixels = matplotlib.image.imread(str(out / images[0]))
    assert pixels.std() > 0.05  # a spectrogram, not a blank canvas


def test_mel_columns_downsample_long_input():
    seconds = 300  # a 5-minute song stays within MAX_WIDTH_PX columns
    x = clicks(seconds, 100, 500, 3)
    mel = report.mel_columns(x, max_columns=report.image_width(seconds))
    assert report.image_width(seconds) == report.MAX_WIDTH_PX
    assert mel.shape[0] == 80 and 1900 < mel.shape[1] <= report.MAX_WIDTH_PX
    assert np.isfinite(mel).all()
    # Columns are maxima over blocks of consecutive frames of the full-resolution mel.
    minute = x[: 60 * SR]
    full = report.mel_columns(minute, max_columns=10**6)
    assert full.shape == (80, 60 * SR // 256)
    pooled = report.mel_columns(minute, max_columns=500)
    factor = -(-full.shape[1] // 500)
    assert pooled.shape == (80, -(-full.shape[1] // factor))
    np.testing.assert_array_equal(pooled[:, 7], full[:, 7 * factor : 8 * factor].max(axis=1))
    # Chunked computation equals the one-shot front end away from the signal's end.
    short = report.mel_columns(x[: 2 * SR], max_columns=2000)
    assert short.shape == (80, 2 * SR // 256)
    np.testing.assert_allclose(
        short[:, :-2], np.asarray(audio.log_mel(x[: 2 * SR]))[:, :-2], atol=1e-4
    )


def test_report_falls_back_when_the_input_is_gone(tmp_path):
    seconds = 2.0
    song, drums = clicks(seconds, 90, 300, 5), clicks(seconds, 90, 3000, 6)
    audio.save(tmp_path / "a_take0_drums.wav", drums)
    audio.save(tmp_path / "a_take0_mix.wav", 0.5 * (song + drums))
    summary = {
        "inputs": [
            {
                "name": "a",
                "path": str(tmp_path / "moved_away.wav"),
                "seconds": seconds,
                "error": None,
                "beats": [],
                "takes": [{"take": 0, "drums": "a_take0_drums.wav", "mix": "a_take0_mix.wav"}],
            }
        ]
    }
    page = open(report.write_report(str(tmp_path), summary), encoding="utf-8").read()
    assert "mix minus its drums" in page
    assert len(re.findall(r"<img ", page)) == 3
