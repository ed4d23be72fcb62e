"""The demo behind `make demo`: the whole main job on the embedded synthetic data.

    python -m jdrum.demo --workdir runs/demo

1. builds synthstems `demo` (the training songs) and `eval` (32 whole held-out songs of
   20-60 s from seeds no training config uses) into `--data_dir` (once; later runs reuse them);
2. writes `<workdir>/stems/*.wav` (drums, drumless and mix of the `--num_songs` shortest
   held-out songs, default 1) and `<workdir>/mels.png` (their log-mel spectrograms with the
   true beats, downbeats bold);
3. trains the two tiny VQ-VAEs (`<workdir>/vqvae_drums`, `<workdir>/vqvae_drumless`) and the
   beat tracker that conditions the LMs (`<workdir>/tracker_drumless`: the paper's non-drum
   tracker, madmom's network fine-tuned on the drumless stems for `TRACKER_STEPS` steps, named
   in `<workdir>/tracker.json`), and tokenizes the training set with it (`<workdir>/tokens/`).
   madmom's own network, trained on full mixes, hears bossa, funk and halftime drumless stems
   from ~150 BPM up at half tempo, and an LM conditioned on it plays at half tempo there;
4. trains two tiny LMs that differ in one thing, the beat: seq2seq + low-level beat
   (`<workdir>/lm`) and seq2seq without beat (`<workdir>/lm_seq2seq_nobeat`), each with its
   conditions dropped at random (`LM_DROPS`), so that `--guidance` works on them, and
   sampling with guidance `LM_GUIDANCE` by default (their `config.sampling.guidance`, which
   `jdrum.sample`, `jdrum.evaluate` and the app use unless told otherwise).
   The VQ-VAEs and the tracker, and then the two LMs, train side by side in `--jobs` processes
   (default 2 where there are 2 cores: each trainer keeps ~1.2 of them busy; on 2 cores a pair
   takes ~0.7 of the time of one after the other); their progress bars take turns on one line.
5. samples drums for the held-out songs of step 2, whole, with both LMs
   (`<workdir>/samples/<lm>/`, each with report.html);
6. evaluates both LMs on the `--eval_songs` shortest held-out songs (the 8 shortest: 3 min
   of audio, both meters, a tempo and a groove change; `jdrum.inference.evaluation`: whole
   songs, beats by madmom's default DBN, the ceiling, round-trip and floor rows, 95 % bootstrap
   intervals over songs) into `<workdir>/evaluation.{json,csv}` and prints the table.
   `python -m jdrum.evaluate` evaluates all 32 (command in the README).

Drum audio comes from Griffin-Lim (`VOCODER`), and the demo trains no vocoder: at its budget
the tiny HiFi-GAN is far behind (held-out mel L1 ~0.7 against ~0.1), and the tiny Vocos-style
vocoder (`configs/vocos.py:tiny`, 5.7 minutes) beats Griffin-Lim on the drum VQ-VAE's
reconstructions but not on real mels, and adds a low drone (README, "The neural vocoder at
the demo's budget").

Every stage resumes or skips what an earlier run finished. Library chatter is hidden unless
`--verbosity 0` is given (`jdrum.console`).
"""

from __future__ import annotations

import functools
import os
import time

import numpy as np
from absl import app, flags

from configs import lm as lm_configs
from configs import tracker_drumless, vqvae_drumless, vqvae_drums
from jdrum import audio, console, data, parallel
from jdrum.datasets import tokens
from jdrum.inference import evaluation, songs, tokenizer
from jdrum.trainers import beat_tracker, lm, vqvae

# Demo LMs: (directory in the workdir, configs/lm.py variant); they differ only in the beat.
LMS = (("lm", "seq2seq_low"), ("lm_seq2seq_nobeat", "seq2seq_nobeat"))
# Classifier-free guidance: the probabilities of dropping the beat, the drumless input, or both
# (config.train.drop_*); they cost nothing at guidance 1 (README, "--guidance").
LM_DROPS = {"drop_beat": 0.1, "drop_drumless": 0.1, "drop_both": 0.1}
# Their default guidance weight W (MusicGen's default too). Unguided (W = 1), a third of the
# tiny LM's takes fall into a "wash" (no clear hits over a steady low band) for a while: the
# drone excess over the real drums' was +5.5 dB on the demo's eight songs and four takes'
# +6.0; at W = 3 it is -1.3 and -0.7 dB, with onset F1 0.73 -> 0.82 and the same beat F1
# (README, "--guidance"). Takes agree more (token disagreement 0.80 -> 0.68).
LM_GUIDANCE = 3.0
TRACKER_DIR = "tracker_drumless"  # the LMs' conditioning tracker, in the workdir
TRACKER_STEPS = 300  # from madmom's weights: validation beat F1 0.99 on the drumless stems
VOCODER = "griffin-lim"  # how the demo's samples become audio (see the module docstring)
EVAL_DATASET = "synthstems/eval"

_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Where the demo writes its files.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "Where synthstems is built.")
_DATASET = flags.DEFINE_string("dataset", "synthstems/demo", "Training dataset NAME/CONFIG.")
_NUM_SONGS = flags.DEFINE_integer("num_songs", 1, "Shortest held-out songs to write and sample.")
_EVAL_SONGS = flags.DEFINE_integer("eval_songs", 8, "Shortest held-out songs to evaluate (0: all).")
_JOBS = flags.DEFINE_integer(
    "jobs",
    min(2, os.cpu_count() or 1),
    "Processes training the two VQ-VAEs (then the two LMs) side by side; 1: one after the other.",
    lower_bound=1,
)


def plot_mels(songs: list[data.Song], path: str) -> None:
    """One row per song: log-mel of the mix, drums and drumless with the true beats."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = audio.DEFAULT_SPECTROGRAM
    fig, axes = plt.subplots(len(songs), 3, figsize=(18, 3.2 * len(songs)), squeeze=False)
    for row, song in zip(axes, songs, strict=True):
        stems = [("mix", song.drums + song.drumless), ("drums", song.drums)]
        for ax, (name, x) in zip(row, stems + [("drumless", song.drumless)], strict=True):
            mel = np.asarray(audio.log_mel(x, spec))
            ax.imshow(
                mel, origin="lower", aspect="auto", extent=(0, song.seconds, 0, spec.n_mels),
                vmin=-5,
            )  # fmt: skip
            for time_s, position in song.true_beats:
                ax.axvline(time_s, color="w", lw=1.6 if position == 1 else 0.4, alpha=0.8)
            ax.set_title(f"{song.song_id}: {name}")
            ax.set_xlabel("s")
            ax.set_ylabel("mel bin")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def build(name: str) -> None:
    builder = data.builder(name, _DATA_DIR.value)
    if not builder.is_prepared():
        print(f"Building {name} into {_DATA_DIR.value} (once; later runs reuse it) ...")
    builder.download_and_prepare()
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f"  {name}: {builder.data_dir} {splits}")


def main(argv):
    del argv
    console.quiet_libraries()
    start = time.perf_counter()
    build(_DATASET.value)
    build(EVAL_DATASET)

    source = evaluation.open_split(EVAL_DATASET, "test", _DATA_DIR.value)
    held_out = data.songs(source, _NUM_SONGS.value, shortest=True)
    stems_dir = os.path.join(_WORKDIR.value, "stems")
    written = []
    for song in held_out:
        for stem, x in [("drums", song.drums), ("drumless", song.drumless)]:
            written.append(os.path.join(stems_dir, f"{song.song_id}_{stem}.wav"))
            audio.save(written[-1], x)
        written.append(os.path.join(stems_dir, f"{song.song_id}_mix.wav"))
        audio.save(written[-1], song.drums + song.drumless)
    plot_path = os.path.join(_WORKDIR.value, "mels.png")
    plot_mels(held_out, plot_path)
    print(f"Wrote {len(written)} stems of {len(held_out)} held-out songs to {stems_dir}/")
    print(f"Wrote mel spectrograms with beat lines to {plot_path}")

    stages = ("drums", "drumless", TRACKER_DIR)
    print(
        f"Training the tiny drums and drumless VQ-VAEs and the drumless beat tracker in "
        f"{_WORKDIR.value}/ ..."
    )
    train = functools.partial(
        train_stage,
        run_dir=_WORKDIR.value,
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        verbose=console.verbose_requested(),
    )
    for stage, line in zip(stages, _jobs(train, stages), strict=True):
        print(f"  {stage} validation: {line}")
    token_dir = tokens.token_dir(_WORKDIR.value, _DATASET.value)
    if os.path.exists(os.path.join(token_dir, "info.json")):
        print(f"Token records already in {token_dir}")
    else:
        counts = tokenizer.tokenize(
            _WORKDIR.value, _DATASET.value, _DATA_DIR.value, tracker=f"run:{TRACKER_DIR}"
        )
        print(f"Wrote token records (beats by {TRACKER_DIR}) to {token_dir} {counts}")

    print(f"Training the tiny LMs {', '.join(v for _, v in LMS)} in {_WORKDIR.value}/ ...")
    train = functools.partial(
        train_lm,
        run_dir=_WORKDIR.value,
        dataset=_DATASET.value,
        verbose=console.verbose_requested(),
    )
    for (name, _), line in zip(LMS, _jobs(train, LMS), strict=True):
        print(f"  {name} validation: {line}")

    drumless_stems = [p for p in written if p.endswith("_drumless.wav")]
    reports = []
    for name, _ in LMS:
        out = os.path.join(_WORKDIR.value, "samples", name)
        print(f"Sampling {len(drumless_stems)} whole held-out songs with {name} into {out} ...")
        summary = songs.sample(
            _WORKDIR.value, drumless_stems, out, lm=name, num_samples=2, vocoder=VOCODER
        )
        reports.append(summary["report"])

    print(f"Evaluating both LMs on {_EVAL_SONGS.value or 'all'} whole {EVAL_DATASET} songs ...")
    runs = [f"{_WORKDIR.value}:{name}" for name, _ in LMS]
    result = evaluation.evaluate_runs(
        runs,
        EVAL_DATASET,
        "test",
        _DATA_DIR.value,
        max_songs=_EVAL_SONGS.value,
        shortest=True,
        output_dir=_WORKDIR.value,
        vocoder=VOCODER,
    )
    print_verdict(result, runs)
    for path in reports:
        print(f"Report: {path}")
    print(f"Done in {time.perf_counter() - start:.0f} s.")


def print_verdict(result: dict, runs: list[str]) -> None:
    """Beat F1 of each LM, the ceiling and the floor, and whether the beat LM's interval lies
    above the no-beat LM's."""
    rows = result["rows"]

    def f1(label):
        stats = rows[label]["summary"]["beat_f1"]
        return f"{stats['mean']:.3f} [{stats['low']:.3f}, {stats['high']:.3f}]"

    beat, nobeat = runs
    print(f"Beat F1 against the true beats over {result['num_songs']} held-out songs:")
    print(f"  seq2seq + low beat:   {f1(beat)}")
    print(f"  seq2seq without beat: {f1(nobeat)}")
    print(f"  the real drums (ceiling): {f1('real drums')}")
    if beat + " vs another song" in rows:  # the floor needs two songs
        print(
            f"  the beat LM against another song's beats (floor): {f1(beat + ' vs another song')}"
        )
    above = rows[beat]["summary"]["beat_f1"]["low"] > rows[nobeat]["summary"]["beat_f1"]["high"]
    print(
        "  the beat LM's interval lies " + ("above" if above else "NOT above") + " the no-beat LM's"
    )


def _jobs(fn, items) -> list[str]:
    return list(parallel.process_map(fn, items, num_workers=min(_JOBS.value, len(items))))


def train_stage(stage: str, **kwargs) -> str:
    """`train_tracker` for `TRACKER_DIR`, else `train_vqvae` of that stem."""
    return train_tracker(**kwargs) if stage == TRACKER_DIR else train_vqvae(stage, **kwargs)


def train_tracker(*, run_dir: str, dataset: str, data_dir: str, verbose: bool) -> str:
    """Trains (or resumes) the demo's drumless beat tracker; its validation line (see
    `train_vqvae`)."""
    console.quiet_libraries(verbose=verbose)
    config = tracker_drumless.get_config("tiny")
    config.data.dataset, config.data.data_dir = dataset, data_dir
    config.model.init = "madmom"
    config.train.num_steps = config.train.checkpoint_every = TRACKER_STEPS
    state = beat_tracker.train_and_evaluate(config, os.path.join(run_dir, TRACKER_DIR))
    result = beat_tracker.evaluate(state.params, beat_tracker.make_model(config), config)
    return f"loss {result['loss']:.3f}, beat F1 {result.get('beat_f1', float('nan')):.3f}"


def train_vqvae(stem: str, *, run_dir: str, dataset: str, data_dir: str, verbose: bool) -> str:
    """Trains (or resumes) the tiny `stem` VQ-VAE of the demo; its validation line. Runs in a
    `--jobs` process, so it takes every value as an argument (no flags)."""
    console.quiet_libraries(verbose=verbose)
    config = (vqvae_drums if stem == "drums" else vqvae_drumless).get_config("tiny")
    config.data.dataset, config.data.data_dir = dataset, data_dir
    state = vqvae.train_and_evaluate(config, os.path.join(run_dir, f"vqvae_{stem}"))
    result = vqvae.evaluate(state, vqvae.make_model(config), config)
    return (
        f"reconstruction MSE {result['recon_loss']:.3f}, "
        f"{result['codes_used']:.0f} of {config.model.codebook_size} codes in use"
    )


def train_lm(spec: tuple[str, str], *, run_dir: str, dataset: str, verbose: bool) -> str:
    """Trains (or resumes) the demo LM `(directory, configs/lm.py variant)` on the run's
    tokens; its validation line (see `train_vqvae`)."""
    console.quiet_libraries(verbose=verbose)
    name, variant = spec
    config = lm_configs.get_config(variant, "tiny")
    config.data.tokens, config.data.dataset = run_dir, dataset
    config.train.update(LM_DROPS)
    config.sampling.guidance = LM_GUIDANCE
    state = lm.train_and_evaluate(config, os.path.join(run_dir, name))
    result = lm.evaluate(state, lm.make_model(config), config, run_dir)
    unigram = lm.unigram_bits(config, run_dir)
    return (
        f"{result['loss_bits']:.3f} bits/token "
        f"(unigram entropy of the drum tokens: {unigram:.3f} bits)"
    )


if __name__ == "__main__":
    app.run(main)
