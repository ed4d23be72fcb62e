"""report.html for a folder of sampled drums (written by `python -m jdrum.sample`).

    path = write_report("out/", summary)   # summary: what `jdrum.sample` writes as summary.json

For each input the page shows its name, duration and (where the entry names one) a player for a
copy of the input, the input's log-mel spectrogram with its beats, and for each take players for
the drum stem and the mix, their log-mel spectrograms (the beats tracked on the generated drums
over the drum mel, the input's beats over the mix mel; downbeats bold) and a table of the
per-take metrics, re-samplings, silence flag and gain. Inputs that failed are listed with their
error. The page is one self-contained HTML file (inline CSS, no scripts, no network resources)
that links the wavs and `report_files/*.png` by relative paths, so the folder can be moved or
served as it is.

Summary entries (every field but "name" may be missing; the page says what it cannot show):

    {"run", "lm", "settings", "vocoder",
     "inputs": [{"name", "path", "seconds", "error", "beats": [[t, pos], ...],
                 "copy": "NAME.wav" (optional: a copy of the input, relative to output_dir),
                 "takes": [{"take", "drums", "mix", "beats", "metrics": {name: float},
                            "retries", "silent", "gain_db"}, ...]}, ...]}
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import re
import urllib.parse

import jax
import numpy as np

from jdrum import audio

FILES_DIR = "report_files"
MAX_WIDTH_PX = 2000  # widest spectrogram image (a 5-minute song included)
MIN_WIDTH_PX = 640
PX_PER_SECOND = 60
HEIGHT_PX = 200
DPI = 100
MEL_CHUNK = 2**20  # samples per jitted mel call (one compilation, bounded memory)
MEL_FLOOR = -5.0  # log10 floor of `audio.log_mel`, the bottom of the colour scale

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 2100px; color: #222; }
h2 { border-top: 1px solid #ccc; padding-top: 0.8em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.left, th.left { text-align: left; }
img { display: block; max-width: 100%; margin: 0.3em 0; }
.error { color: #b00020; }
.note { color: #666; font-size: 0.9em; }
.take { margin-left: 1em; }
audio { vertical-align: middle; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; }
"""


# ------------------------------------------------------------------------------ images


@functools.lru_cache(maxsize=1)
def _jitted_log_mel():
    return jax.jit(audio.log_mel)


def mel_columns(x_L: np.ndarray, max_columns: int = MAX_WIDTH_PX) -> np.ndarray:
    """(80, <= max_columns) log-mel of a signal for display.

    The mel is computed in fixed chunks of `MEL_CHUNK` samples (one jit compilation for any
    length, bounded memory) and, when it has more frames than `max_columns`, max-pooled over
    time (so short drum hits stay visible) to at most `max_columns` columns.
    """
    x_L = np.asarray(x_L, np.float32)
    hop = audio.DEFAULT_SPECTROGRAM.hop_length
    num_frames = len(x_L) // hop
    if num_frames == 0:
        return np.full((audio.DEFAULT_SPECTROGRAM.n_mels, 1), MEL_FLOOR, np.float32)
    mel_fn = _jitted_log_mel()
    chunks = []
    for start in range(0, len(x_L), MEL_CHUNK):
        chunk = x_L[start : start + MEL_CHUNK]
        frames = len(chunk) // hop
        if frames == 0:
            break
        padded = np.zeros(MEL_CHUNK, np.float32)
        padded[: len(chunk)] = chunk
        chunks.append(np.asarray(mel_fn(padded))[:, :frames])
    mel = np.concatenate(chunks, axis=1)
    factor = math.ceil(mel.shape[1] / max_columns)
    if factor > 1:
        columns = math.ceil(mel.shape[1] / factor)
        padded = np.full((mel.shape[0], columns * factor), -np.inf, np.float32)
        padded[:, : mel.shape[1]] = mel
        mel = padded.reshape(mel.shape[0], columns, factor).max(axis=2)
    return mel


def image_width(seconds: float) -> int:
    """Pixel width of a spectrogram image: PX_PER_SECOND, within [MIN, MAX]_WIDTH_PX."""
    return int(min(MAX_WIDTH_PX, max(MIN_WIDTH_PX, seconds * PX_PER_SECOND)))


def plot_mel(
    x_L: np.ndarray,
    beats_Nx2,
    title: str,
    path: str,
    color: str = "white",
    other_beats_Nx2=None,
    other_color: str = "cyan",
) -> None:
    """Writes a PNG of the log-mel of `x_L` with beat lines (downbeats, position 1, bold).

    Args:
      x_L: mono audio at `audio.SAMPLE_RATE`.
      beats_Nx2: (n, 2) beat times in s and positions in the bar, or None for no lines.
      title: the plot title (plain text; not parsed as TeX).
      path: the PNG to write.
      color: colour of the beat lines.
      other_beats_Nx2: a second set of beats (e.g. the input's under a take's): then
        `beats_Nx2` are drawn over the upper half of the image and these, in `other_color`,
        over the lower half.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seconds = len(x_L) / audio.SAMPLE_RATE
    width = image_width(seconds)
    mel = mel_columns(x_L, max_columns=width)
    fig = Figure(figsize=(width / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    left, right, bottom, top = 48, 10, 34, 22  # margins in pixels
    ax_width, ax_height = 1 - (left + right) / width, 1 - (bottom + top) / HEIGHT_PX
    ax = fig.add_axes((left / width, bottom / HEIGHT_PX, ax_width, ax_height))
    vmax = max(float(mel.max()), MEL_FLOOR + 1.0)
    ax.imshow(
        mel,
        origin="lower",
        aspect="auto",
        extent=(0, seconds, 0, mel.shape[0]),
        vmin=MEL_FLOOR,
        vmax=vmax,
        interpolation="nearest",
    )
    halves = [(beats_Nx2, color, (0.0, 1.0))]
    if other_beats_Nx2 is not None:
        halves = [(beats_Nx2, color, (0.5, 1.0)), (other_beats_Nx2, other_color, (0.0, 0.5))]
    for lines, line_color, (low, high) in halves:
        beats = np.asarray(lines if lines is not None else [], np.float64).reshape(-1, 2)
        for time_s, position in beats:
            bold = round(position) == 1
            ax.axvline(
                time_s, low, high, color=line_color, lw=2.0 if bold else 0.6,
                alpha=0.9 if bold else 0.7,
            )  # fmt: skip
    ax.set_xlim(0, seconds)
    ax.set_title(title, fontsize=9, usetex=False, parse_math=False)
    ax.set_xlabel("s", fontsize=8, labelpad=1)
    ax.set_ylabel("mel bin", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.savefig(path, dpi=DPI)


# -------------------------------------------------------------------------------- html


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _href(relative_path: str) -> str:
    """An escaped relative URL for a file name relative to the report."""
    return _e(urllib.parse.quote(relative_path.replace(os.sep, "/")))


def _format(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}" if math.isfinite(value) else str(value)
    return str(value)


def _duration(seconds) -> str:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "unknown duration"
    minutes, rest = divmod(float(seconds), 60.0)
    return f"{int(minutes)}:{rest:04.1f} ({float(seconds):.1f} s)"


def _slug(index: int, name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "input"
    return f"{index:03d}_{safe}"


def _read(path: str) -> tuple[np.ndarray | None, str | None]:
    """(audio, None) or (None, reason)."""
    try:
        return audio.load(path, allow_silent=True), None
    except audio.AudioError as error:
        return None, str(error)


def _player(output_dir: str, name: str | None, label: str) -> str:
    if not name:
        return ""
    if not os.path.exists(os.path.join(output_dir, name)):
        return f'<p class="error">{_e(label)}: missing file {_e(name)}</p>\n'
    return (
        f'<p>{_e(label)}: <audio controls preload="none" src="{_href(name)}"></audio> '
        f'<a href="{_href(name)}">{_e(name)}</a></p>\n'
    )


def _image(output_dir: str, slug: str, x, beats, title: str, color: str = "white") -> str:
    filename = f"{slug}.png"
    plot_mel(x, beats, title, os.path.join(output_dir, FILES_DIR, filename), color)
    src = _href(f"{FILES_DIR}/{filename}")
    return f'<img src="{src}" alt="{_e(title)}">\n'


def _input_copy(output_dir: str, entry: dict) -> str | None:
    """A copy of the input inside output_dir: the entry's "copy", else a file there with the
    input's file name (None when there is neither)."""
    if entry.get("copy"):
        return entry["copy"]
    base = os.path.basename(entry.get("path") or "")
    if base and os.path.isfile(os.path.join(output_dir, base)):
        return base
    return None


def _metrics_table(takes: list[dict]) -> str:
    names = []
    for take in takes:
        for name in take.get("metrics") or {}:
            if name not in names:
                names.append(name)
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = []
    for i, take in enumerate(takes):
        metrics = take.get("metrics") or {}
        cells = "".join(f"<td>{_e(_format(metrics.get(n)))}</td>" for n in names)
        gain = take.get("gain_db")
        gain = f"{gain:+.1f}" if isinstance(gain, int | float) else "–"
        rows.append(
            f"<tr><td>{_e(take.get('take', i))}</td>{cells}"
            f"<td>{_e(_format(take.get('retries')))}</td>"
            f"<td>{_e(_format(take.get('silent')))}</td><td>{_e(gain)}</td></tr>"
        )
    return (
        f"<table><tr><th>take</th>{head}<th>retries</th><th>silent</th><th>gain dB</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>\n"
    )


def _input_section(output_dir: str, index: int, entry: dict) -> str:
    name = str(entry.get("name", f"input {index}"))
    parts = [f'<section id="input-{index}">\n<h2>{_e(name)}</h2>\n']
    if entry.get("path"):
        parts.append(f'<p class="note">{_e(entry["path"])}</p>\n')
    if entry.get("error"):
        parts.append(f'<p class="error">Not processed: {_e(entry["error"])}</p>\n</section>\n')
        return "".join(parts)
    takes = list(entry.get("takes") or [])
    parts.append(f"<p>Duration {_e(_duration(entry.get('seconds')))}, {len(takes)} take(s).</p>\n")
    copy = _input_copy(output_dir, entry)
    parts.append(_player(output_dir, copy, "input"))
    slug = _slug(index, name)

    # The input's mel: the original file, else a copy, else take 0's mix minus its drums.
    x, reason = _read(entry["path"]) if entry.get("path") else (None, "no path")
    if x is None and copy:
        x, _ = _read(os.path.join(output_dir, copy))
    note = ""
    if x is None and takes:
        mix, _ = _read(os.path.join(output_dir, takes[0].get("mix") or ""))
        drums, _ = _read(os.path.join(output_dir, takes[0].get("drums") or ""))
        if mix is not None and drums is not None and len(mix) == len(drums):
            x = mix - drums
            note = " (the input could not be read; shown as take 0's mix minus its drums)"
    if x is not None:
        parts.append(
            f'<p class="note">Input log-mel with its beats (downbeats bold){_e(note)}.</p>\n'
        )
        parts.append(_image(output_dir, f"{slug}_input", x, entry.get("beats"), "input"))
    else:
        parts.append(f'<p class="error">Input spectrogram unavailable: {_e(reason)}</p>\n')

    if takes:
        parts.append(_metrics_table(takes))
    for i, take in enumerate(takes):
        k = take.get("take", i)
        parts.append(f'<div class="take">\n<h3>Take {_e(k)}</h3>\n')
        for stem in ("drums", "mix"):
            wav = take.get(stem)
            parts.append(_player(output_dir, wav, stem))
            if not wav or not os.path.exists(os.path.join(output_dir, wav)):
                continue
            y, why = _read(os.path.join(output_dir, wav))
            if y is None:
                parts.append(f'<p class="error">{_e(why)}</p>\n')
                continue
            if stem == "drums":
                beats, title, color = take.get("beats"), f"take {k}: drums", "#ff7f0e"
            else:
                beats, title, color = entry.get("beats"), f"take {k}: mix", "white"
            parts.append(_image(output_dir, f"{slug}_take{k}_{stem}", y, beats, title, color))
        parts.append("</div>\n")
    parts.append("</section>\n")
    return "".join(parts)


def write_report(output_dir: str, summary: dict) -> str:
    """Writes `output_dir/report.html` and its images in `output_dir/report_files/`.

    Args:
      output_dir: the folder holding the wavs named in the summary (relative names).
      summary: the sampling summary (see the module docstring).

    Returns:
      The path of report.html.
    """
    output_dir = os.fspath(output_dir)
    os.makedirs(os.path.join(output_dir, FILES_DIR), exist_ok=True)
    inputs = list(summary.get("inputs") or [])
    done = sum(1 for e in inputs if not e.get("error"))
    settings = summary.get("settings") or {}
    header = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        "<title>jdrum samples</title>\n<style>",
        _STYLE,
        "</style>\n</head>\n<body>\n<h1>jdrum samples</h1>\n<table>\n",
    ]
    for label, key in (("run", "run"), ("language model", "lm"), ("vocoder", "vocoder")):
        if summary.get(key) is not None:
            header.append(
                f'<tr><th class="left">{label}</th><td class="left">{_e(summary[key])}</td></tr>\n'
            )
    header.append(
        f'<tr><th class="left">inputs</th><td class="left">{done} done, '
        f"{len(inputs) - done} failed</td></tr>\n</table>\n"
    )
    if settings:
        text = json.dumps(settings, indent=2, sort_keys=True, default=str)
        header.append(f"<details><summary>settings</summary><pre>{_e(text)}</pre></details>\n")
    header.append(
        '<p class="note">Spectrograms: log10 mel, 80 bands. Lines: beats (downbeats bold); '
        "white: the input's beats, orange: beats tracked on the generated drums.</p>\n"
    )
    if inputs:
        header.append("<ul>\n")
        for i, entry in enumerate(inputs):
            status = " (failed)" if entry.get("error") else ""
            header.append(
                f'<li><a href="#input-{i}">{_e(entry.get("name", i))}</a>{_e(status)}</li>\n'
            )
        header.append("</ul>\n")
    sections = [_input_section(output_dir, i, entry) for i, entry in enumerate(inputs)]
    page = "".join(header) + "".join(sections) + "</body>\n</html>\n"
    path = os.path.join(output_dir, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
