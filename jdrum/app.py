"""Drums on demand in the browser: `python -m jdrum.app [--run DIR] [--lm NAME]`.

    pip install -e '.[app]'          # Gradio (or: make app, which also starts it on runs/demo)
    python -m jdrum.app --run runs/demo [--host 127.0.0.1] [--port 7860]

A local web page (Gradio Blocks) over `jdrum.inference.studio.Studio`: drop a song in (wav,
flac, ogg, mp3, m4a, up to `--max_minutes`), choose the drummer (an LM of the run), the number
of takes (1-8), temperature, top-p, the seed (-1: a new one each press; the session's table
lists every result's seed, so a take can be made again), guidance (for LMs trained with dropped
conditions) and optionally drum audio to continue ("continue my groove", with its position),
press "Make drums", and audition the takes: per take, players for the drums and the mix, the
drums' spectrogram with its beats and the song's, its beat F1 and tempo agreement against the
song, a "keep" mark, and the drum and mix wavs to download. Kept takes gather in one list;
earlier results of the session stay listed and can be shown again. Without `--run` it uses
runs/demo.

A bad, silent, too long or unsupported file gets a message on the page, and the app keeps
serving. Requests run one at a time: a second waits in the queue and the page shows its place;
"Cancel" stops a request between sampling windows, or before it starts. Models load once at
start-up (other LMs of the run on first use), and the jit programs compile once per window
length.

For a local tool: it serves 127.0.0.1 unless `--host` says otherwise, limits uploads to
`--max_upload_mb`, serves files only from its own folder (`--workdir`, by default a new
temporary folder deleted at exit), and has no share link and no telemetry.
"""

# No `from __future__ import annotations`: Gradio reads the handlers' `gr.Request` annotations.
import atexit
import os
import secrets
import shutil
import sys
import tempfile
import threading

from absl import app, flags

from jdrum import console
from jdrum.inference import pipeline
from jdrum.inference import studio as studio_lib

DEFAULT_RUN = os.path.join("runs", "demo")
_RUN = flags.DEFINE_string("run", None, "Run directory; default: runs/demo if it exists.")
_LM = flags.DEFINE_string("lm", None, "The LM the page starts with; default: lm/.")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to serve on (0.0.0.0: every one).")
_PORT = flags.DEFINE_integer("port", 7860, "Port to serve on.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Where uploads and results go; default: a temporary folder deleted at exit."
)
_MAX_MINUTES = flags.DEFINE_float("max_minutes", 10.0, "Longest song accepted, in minutes.")
_MAX_UPLOAD_MB = flags.DEFINE_integer("max_upload_mb", 300, "Largest upload, in MiB.")
_VOCODER = flags.DEFINE_enum("vocoder", "auto", list(pipeline.VOCODERS), "As in jdrum.sample.")

TITLE = "jdrum: drums for your song"
PROGRESS = {  # stage: (fraction done when it starts, fraction when it ends)
    "codes": (0.0, 0.03),
    "beat": (0.03, 0.08),
    "sampling": (0.08, 0.75),
    "vocoding": (0.75, 0.85),
    "beats": (0.85, 0.9),
    "pictures": (0.9, 1.0),
}
STAGE_NAMES = {
    "codes": "reading the song",
    "beat": "finding its beat",
    "sampling": "drumming",
    "vocoding": "rendering audio",
    "beats": "measuring the takes",
    "pictures": "drawing spectrograms",
}


def take_summary(take: dict) -> str:
    """The heading and measures of one take, in Markdown."""
    m = take["metrics"]
    line = (
        f"beat F1 **{m['beat_f1']:.2f}** · tempo agreement **{m['tempo']:.0f}**"
        f" (at ×2 or ½: {m['tempo_octave']:.0f}) · downbeat F1 {m['downbeat_f1']:.2f}"
        f" · level {m['level_dbfs']:.1f} dBFS"
    )
    silent = " · near-silent" if take.get("silent") else ""
    return f"### Take {take['take'] + 1}\n{line}{silent} (against the song's beats)"


def history_table(history: list[dict]) -> str:
    """The session's results as a Markdown table, newest first."""
    if not history:
        return "No results yet."
    lines = ["| # | song | length | takes | drummer | seed | kept | took |", "|---" * 8 + "|"]
    for result in reversed(history):
        kept = [str(t["take"] + 1) for t in result["takes"] if t["keep"]]
        lines.append(
            f"| {result['id']} | {result['name']} | {result['seconds']:.1f} s"
            f" | {len(result['takes'])} | {result['lm']} | {result['settings']['seed']}"
            f" | {', '.join(kept) or '-'} | {result['elapsed']:.1f} s |"
        )
    return "\n".join(lines)


def kept_files(history: list[dict]) -> list[str]:
    """The drum and mix wavs of every kept take of the session."""
    return [t[stem] for r in history for t in r["takes"] if t["keep"] for stem in ("drums", "mix")]


def build(studio: studio_lib.Studio):
    """The Gradio Blocks page over a loaded studio (module docstring)."""
    import gradio as gr

    # Cancel events per browser session, of its request waiting in the queue and of the one
    # running ("Cancel" sets both). A page has one request at a time: Gradio ignores presses
    # while its last is pending.
    waiting: dict[str, threading.Event] = {}
    running: dict[str, threading.Event] = {}

    def guidable(lm) -> bool:
        try:
            studio.pipeline(lm).sampling_config(guidance=2.0)
        except (ValueError, studio_lib.StudioError):
            return False
        return True

    first = studio.pipeline(studio.default_lm).sampling
    with gr.Blocks(title=TITLE, analytics_enabled=False) as page:
        history = gr.State([])
        shown = gr.State(None)  # the id of the result on show
        gr.Markdown(
            f"# {TITLE}\nDrop in a song without drums, press **Make drums**, and listen to the"
            f" takes. Run: `{studio.run_dir}`. Songs up to {studio.max_seconds / 60:g} minutes"
            f" ({', '.join(studio_lib.SUFFIXES)})."
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                song = gr.File(label="Song", file_types=list(studio_lib.SUFFIXES), elem_id="song")
                lm = gr.Dropdown(
                    studio.lms, value=studio.default_lm, label="Drummer (the run's LM)"
                )
                num_takes = gr.Slider(
                    1, studio.max_takes, value=2, step=1, label="Takes", elem_id="takes"
                )
                seed = gr.Number(
                    -1, precision=0, label="Seed (-1: a new one each time; the table lists it)"
                )
                with gr.Accordion("Sampling", open=False):
                    temperature = gr.Slider(
                        0.1, 2.0, value=first.temperature, step=0.01, label="Temperature"
                    )
                    top_p = gr.Slider(
                        0.05, 1.0, value=first.top_p, step=0.01,
                        label="Top-p (lower: takes that differ in feel, safer notes)",
                    )  # fmt: skip
                    can_guide = guidable(studio.default_lm)
                    guidance = gr.Slider(
                        0.0, 5.0, value=1.0, step=0.1, interactive=can_guide,
                        label="Guidance (1: off; above 1: follow the song more closely)",
                        info=None if can_guide else "this LM was trained without it",
                    )  # fmt: skip
                with gr.Accordion("Continue my groove", open=False):
                    prime = gr.File(
                        label="Drum audio to continue (same format as the song)",
                        file_types=list(studio_lib.SUFFIXES),
                    )
                    prime_at = gr.Number(0.0, label="It starts at (seconds into the song)")
                with gr.Row():
                    go = gr.Button("Make drums", variant="primary", elem_id="go")
                    stop = gr.Button("Cancel", elem_id="cancel")
                status = gr.Markdown("", elem_id="status")
            with gr.Column(scale=3):
                slots = []
                for k in range(studio.max_takes):
                    with gr.Group(visible=False, elem_id=f"take{k}") as group:
                        header = gr.Markdown()
                        with gr.Row():
                            drums = gr.Audio(
                                label="drums", type="filepath", interactive=False, format="wav",
                                elem_id=f"take{k}_drums",
                            )  # fmt: skip
                            mix = gr.Audio(
                                label="mix", type="filepath", interactive=False, format="wav",
                                elem_id=f"take{k}_mix",
                            )  # fmt: skip
                        image = gr.Image(
                            label="spectrogram", type="filepath", interactive=False,
                            show_label=False,
                        )  # fmt: skip
                        with gr.Row():
                            keep = gr.Checkbox(label="keep", elem_id=f"take{k}_keep")
                            files = gr.File(
                                label="download", file_count="multiple", interactive=False,
                                elem_id=f"take{k}_files",
                            )  # fmt: skip
                    slots.append((group, header, drums, mix, image, keep, files))
                kept = gr.File(label="Kept takes", file_count="multiple", interactive=False)
                with gr.Accordion("This session's results", open=True):
                    earlier = gr.Dropdown(choices=[], label="Show an earlier result")
                    table = gr.Markdown(history_table([]), elem_id="results")
        slot_outputs = [c for slot in slots for c in slot]

        def show(result) -> list:
            updates = []
            takes = result["takes"] if result else []
            for k in range(studio.max_takes):
                if k >= len(takes):
                    updates += [gr.update(visible=False)] + [gr.update()] * 6
                    continue
                take = takes[k]
                updates += [
                    gr.update(visible=True),
                    take_summary(take),
                    take["drums"],
                    take["mix"],
                    take["image"],
                    take["keep"],
                    [take["drums"], take["mix"]],
                ]
            return updates

        def choices(results):
            return gr.update(
                choices=[(f"{r['id']}: {r['name']} ({len(r['takes'])} takes)", r["id"])
                         for r in reversed(results)],
                value=results[-1]["id"] if results else None,
            )  # fmt: skip

        def make(
            song_path, lm_name, takes, temp, p, seed_value, weight, prime_path, prime_seconds,
            results, request: gr.Request, progress=gr.Progress(),  # noqa: B008
        ):  # fmt: skip
            keep_all = [gr.update()] * len(slot_outputs)
            unchanged = [results, gr.update(), gr.update(), gr.update(), gr.update()]
            if not song_path:
                return [*unchanged, "Choose a song first.", *keep_all]
            session = request.session_hash
            event = waiting.pop(session, None) or threading.Event()  # API calls skip `enqueue`
            if event.is_set():  # cancelled while it waited in the queue
                return [*unchanged, f"Cancelled: {os.path.basename(song_path)}.", *keep_all]
            running[session] = event

            def report(stage, done, total):
                low, high = PROGRESS[stage]
                fraction = low + (high - low) * (done / total if total else 0.0)
                counts = f" {done}/{total}" if total > 1 else ""
                progress(fraction, desc=f"{STAGE_NAMES[stage]}{counts}")

            if seed_value is None or seed_value < 0:  # a new seed, listed with the result
                seed_value = secrets.randbelow(2**31)
            settings = {
                "lm": lm_name, "num_takes": takes, "seed": seed_value, "temperature": temp,
                "top_p": p, "guidance": weight, "prime_at": prime_seconds,
            }  # fmt: skip
            name = os.path.basename(song_path)
            try:
                result = studio.accompany(
                    song_path, settings, prime=prime_path or None, name=name, progress=report,
                    cancel=event,
                )  # fmt: skip
            except studio_lib.StudioError as error:
                gr.Warning(str(error))
                return [*unchanged, f"⚠️ {error}", *keep_all]
            except studio_lib.Cancelled:
                return [*unchanged, f"Cancelled: {name}.", *keep_all]
            finally:
                running.pop(session, None)
            results = [*results, result]
            count = len(result["takes"])
            done = (
                f"{count} take{'s' if count != 1 else ''} of {name} ({result['seconds']:.1f} s)"
                f" in {result['elapsed']:.1f} s."
            )
            return [
                results, result["id"], choices(results), history_table(results),
                kept_files(results), done, *show(result),
            ]  # fmt: skip

        def enqueue(request: gr.Request):  # on the press, before the request is queued
            waiting[request.session_hash] = threading.Event()

        def cancel(request: gr.Request):
            events = [d.get(request.session_hash) for d in (waiting, running)]
            for event in filter(None, events):
                event.set()
            return "Cancelling…" if any(events) else gr.update()

        def reopen(result_id, results):
            result = next((r for r in results if r["id"] == result_id), None)
            return [result_id, *show(result)]

        def mark(k):
            def toggle(value, result_id, results):
                for result in results:
                    if result["id"] == result_id and k < len(result["takes"]):
                        result["takes"][k]["keep"] = bool(value)
                return results, kept_files(results), history_table(results)

            return toggle

        def lm_changed(lm_name):
            sampling = studio.pipeline(lm_name).sampling
            ok = guidable(lm_name)
            return (
                gr.update(value=sampling.temperature),
                gr.update(value=sampling.top_p),
                gr.update(value=1.0, interactive=ok,
                          info=None if ok else "this LM was trained without it"),
            )  # fmt: skip

        go.click(enqueue, None, None, queue=False).then(
            make,
            [song, lm, num_takes, temperature, top_p, seed, guidance, prime, prime_at, history],
            [history, shown, earlier, table, kept, status, *slot_outputs],
            concurrency_limit=1,
            concurrency_id="sampling",
        )
        stop.click(cancel, None, status, queue=False)
        earlier.input(reopen, [earlier, history], [shown, *slot_outputs])
        for k, slot in enumerate(slots):
            slot[5].input(mark(k), [slot[5], shown, history], [history, kept, table])
        lm.input(lm_changed, lm, [temperature, top_p, guidance])
    return page


def serve(studio, host: str, port: int, max_upload_mb: int, block: bool = True):
    """Builds the page and serves it (`block`: until interrupted); returns the Blocks."""
    page = build(studio)
    page.queue(default_concurrency_limit=1, max_size=64)
    page.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        show_error=False,
        max_file_size=f"{max_upload_mb}mb",
        allowed_paths=[str(studio.workdir / "results")],
        ssr_mode=False,
        quiet=True,
        prevent_thread_lock=not block,
    )
    return page


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    console.quiet_libraries()
    run_dir = _RUN.value
    if run_dir is None:
        if not os.path.isdir(DEFAULT_RUN):
            sys.exit(
                "jdrum.app: no --run given and no runs/demo here; make one with `make demo`"
                " (or train your own, see README), then pass --run DIR"
            )
        run_dir = DEFAULT_RUN
    if _WORKDIR.value:
        workdir = os.path.abspath(_WORKDIR.value)
        os.makedirs(workdir, exist_ok=True)
    else:
        workdir = tempfile.mkdtemp(prefix="jdrum-app-")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    # Gradio keeps uploads and served copies in GRADIO_TEMP_DIR: the app's own folder.
    os.environ["GRADIO_TEMP_DIR"] = os.path.join(workdir, "uploads")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry, no version check
    try:
        import gradio  # noqa: F401
    except ImportError:
        sys.exit("jdrum.app: needs Gradio: pip install -e '.[app]' (or run `make app`)")
    try:
        studio = studio_lib.Studio(
            run_dir, workdir, lm=_LM.value, vocoder=_VOCODER.value,
            max_seconds=_MAX_MINUTES.value * 60.0,
        )  # fmt: skip
    except studio_lib.StudioError as error:
        sys.exit(f"jdrum.app: {error}")
    where = f"http://{_HOST.value}:{_PORT.value}"
    scope = (
        "this computer only; --host 0.0.0.0 serves your network"
        if _HOST.value in ("127.0.0.1", "localhost")
        else "every machine that can reach this address"
    )
    print(f"jdrum.app: {run_dir} (drummers: {', '.join(studio.lms)}) on {where} ({scope})")
    print(f"jdrum.app: uploads and takes go to {workdir}" + ("" if _WORKDIR.value else
          " (deleted when the app stops: download what you keep)"))  # fmt: skip
    try:
        serve(studio, _HOST.value, _PORT.value, _MAX_UPLOAD_MB.value)
    except OSError as error:
        sys.exit(f"jdrum.app: cannot serve on {where}: {str(error).splitlines()[0]}")


if __name__ == "__main__":
    app.run(main)
