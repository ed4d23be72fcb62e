"""The demo behind `make demo`: the whole main job on the embedded synthetic data.

    python -m jdrum.demo --workdir runs/demo

1. builds synthstems `demo` into `--data_dir` (once; later runs reuse it);
2. writes `<workdir>/stems/*.wav` (drums, drumless and mix of a few held-out clips) and
   `<workdir>/mels.png` (their log-mel spectrograms with the true beats, downbeats bold);
3. trains the two tiny VQ-VAEs (`<workdir>/vqvae_drums`, `<workdir>/vqvae_drumless`) and
   tokenizes the dataset (`<workdir>/tokens/`);
4. trains two tiny LMs on the tokens: seq2seq + low-level beat (`<workdir>/lm`) and
   decoder-only without beat (`<workdir>/lm_decoder_nobeat`), and the tiny vocoder
   (`<workdir>/vocoder`);
5. samples drums for the held-out drumless stems of step 2 with both LMs
   (`<workdir>/samples/<lm>/`, each with report.html) and evaluates both LMs on the first
   `--eval_clips` clips of the test split (`<workdir>/evaluation.{json,csv}`: the Table-1
   metrics, and beat F1 of the generated drums against the songs' true beats).

Sampling and evaluation make the drum audio with Griffin-Lim (`VOCODER`): at the demo's
budget the tiny vocoder is far behind it (held-out mel L1 ~0.7 against ~0.1), and its audio
blurs the drum onsets the beat tracker needs (measured: beat F1 of VQ-VAE round trips of the
real drums 0.29 with Griffin-Lim, 0.06 with the tiny vocoder). `python -m jdrum.sample --run
runs/demo --vocoder hifigan ...` plays the tiny vocoder.

Every stage resumes or skips what an earlier run finished. It prints where everything is.
"""

from __future__ import annotations

import os
import time

import numpy as np
from absl import app, flags

from configs import hifigan_v1, vqvae_drumless, vqvae_drums
from configs import lm as lm_configs
from jdrum import audio, data, evaluate, parallel, sample, tokens
from jdrum.trainers import lm, vocoder, vqvae

# Demo LMs: (directory in the workdir, configs/lm.py variant).
LMS = (("lm", "seq2seq_low"), ("lm_decoder_nobeat", "decoder_nobeat"))
VOCODER = "griffin-lim"  # how the demo's samples become audio (see the module docstring)

_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Where the demo writes its files.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "Where synthstems is built.")
_DATASET = flags.DEFINE_string("dataset", "synthstems/demo", "Dataset NAME/CONFIG to build.")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 3, "Held-out clips to write and plot.")
_EVAL_CLIPS = flags.DEFINE_integer("eval_clips", 32, "Test clips to evaluate on (0: all).")


def pick_clips(source, num_clips: int) -> list[dict]:
    """The first clip of each of the first `num_clips` songs of a split."""
    picked, seen = [], set()
    for i in range(len(source)):
        record = source[i]
        if record["song_id"] not in seen:
            seen.add(record["song_id"])
            picked.append(record)
        if len(picked) == num_clips:
            break
    return picked


def plot_mels(records: list[dict], path: str) -> None:
    """One row per clip: log-mel of the mix, drums and drumless with beat lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = audio.DEFAULT_SPECTROGRAM
    fig, axes = plt.subplots(len(records), 3, figsize=(15, 3.2 * len(records)), squeeze=False)
    for row, record in zip(axes, records, strict=True):
        drums = audio.from_pcm16(record["drums"])
        drumless = audio.from_pcm16(record["drumless"])
        for ax, (name, x) in zip(
            row, [("mix", drums + drumless), ("drums", drums), ("drumless", drumless)], strict=True
        ):
            mel = np.asarray(audio.log_mel(x, spec))
            seconds = len(x) / spec.sample_rate
            ax.imshow(
                mel, origin="lower", aspect="auto", extent=(0, seconds, 0, spec.n_mels), vmin=-5
            )
            for time_s, position in record["true_beats"]:
                ax.axvline(time_s, color="w", lw=2.0 if position == 1 else 0.6, alpha=0.8)
            ax.set_title(f"{record['song_id'].decode()} clip {record['clip_index']}: {name}")
            ax.set_xlabel("s")
            ax.set_ylabel("mel bin")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv):
    del argv
    start = time.perf_counter()
    print(f"Building {_DATASET.value} into {_DATA_DIR.value} (once; later runs reuse it)...")
    builder = data.builder(_DATASET.value, _DATA_DIR.value)
    builder.download_and_prepare()
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f"  {builder.data_dir}: {splits}")

    source = data.data_source(_DATASET.value, "test", _DATA_DIR.value)
    clips = pick_clips(source, _NUM_CLIPS.value)
    stems_dir = os.path.join(_WORKDIR.value, "stems")
    written = []
    for record in clips:
        name = f"{record['song_id'].decode()}_clip{record['clip_index']}"
        drums = audio.from_pcm16(record["drums"])
        drumless = audio.from_pcm16(record["drumless"])
        for stem, x in [("drums", drums), ("drumless", drumless), ("mix", drums + drumless)]:
            path = os.path.join(stems_dir, f"{name}_{stem}.wav")
            audio.save(path, x)
            written.append(path)
    plot_path = os.path.join(_WORKDIR.value, "mels.png")
    plot_mels(clips, plot_path)

    print(f"Wrote {len(written)} stems to {stems_dir}/")
    print(f"Wrote mel spectrograms with beat lines to {plot_path}")

    for stem in ("drums", "drumless"):
        workdir = os.path.join(_WORKDIR.value, f"vqvae_{stem}")
        print(f"Training the tiny {stem} VQ-VAE in {workdir} ...")
        config = _vqvae_config(stem)
        state = vqvae.train_and_evaluate(config, workdir)
        result = vqvae.evaluate(state, vqvae.make_model(config.model), config)
        print(
            f"  validation: reconstruction MSE {result['recon_loss']:.3f}, "
            f"{result['codes_used']:.0f} of {config.model.codebook_size} codes in use"
        )
    token_dir = tokens.token_dir(_WORKDIR.value, _DATASET.value)
    if os.path.exists(os.path.join(token_dir, "info.json")):
        print(f"Token records already in {token_dir}")
    else:
        counts = tokens.tokenize(_WORKDIR.value, _DATASET.value, _DATA_DIR.value)
        print(f"Wrote token records to {token_dir} {counts}")

    for name, variant in LMS:
        workdir = os.path.join(_WORKDIR.value, name)
        print(f"Training the tiny {variant} LM in {workdir} ...")
        config = lm_configs.get_config(variant, "tiny")
        config.data.tokens, config.data.dataset = _WORKDIR.value, _DATASET.value
        state = lm.train_and_evaluate(config, workdir)
        result = lm.evaluate(state, lm.make_model(config.model), config, _WORKDIR.value)
        unigram = lm.unigram_bits(config, _WORKDIR.value)
        print(
            f"  validation: {result['loss_bits']:.3f} bits/token "
            f"(unigram entropy of the drum tokens: {unigram:.3f} bits)"
        )

    workdir = os.path.join(_WORKDIR.value, "vocoder")
    print(f"Training the tiny vocoder in {workdir} ...")
    config = hifigan_v1.get_config("tiny")
    config.data.dataset, config.data.data_dir = _DATASET.value, _DATA_DIR.value
    state = vocoder.train_and_evaluate(config, workdir)
    # The training mesh: the evaluation program compiled for the run's last evaluation is reused.
    mesh = parallel.make_mesh(config.mesh)
    evaluator = vocoder.Evaluator(config, vocoder.make_models(config).generator, None, mesh)
    result = evaluator(state)
    print(
        f"  validation: loss-mel L1 {result['mel_l1']:.3f} "
        f"(Griffin-Lim on the same mels: {result['griffin_lim_mel_l1']:.3f})"
    )

    drumless_stems = [p for p in written if p.endswith("_drumless.wav")]
    reports = []
    for name, _ in LMS:
        out = os.path.join(_WORKDIR.value, "samples", name)
        print(f"Sampling {len(drumless_stems)} held-out songs with {name} into {out} ...")
        summary = sample.sample(
            _WORKDIR.value, drumless_stems, out, lm=name, num_samples=2, vocoder=VOCODER
        )
        reports.append(summary["report"])

    print(f"Evaluating both LMs on the {_DATASET.value} test split ...")
    runs = [f"{_WORKDIR.value}:{name}" for name, _ in LMS]
    result = evaluate.evaluate_runs(
        runs,
        _DATASET.value,
        "test",
        _DATA_DIR.value,
        num_clips=_EVAL_CLIPS.value,
        output_dir=_WORKDIR.value,
        vocoder=VOCODER,
    )
    if "real_drums" in result:
        f1 = {run: result["runs"][run]["summary"]["true_beat_f1"]["mean"] for run in runs}
        real = result["real_drums"]["summary"]["true_beat_f1"]["mean"]
        print("Beat F1 of the generated drums against the songs' true beats:")
        for run, value in f1.items():
            print(f"  {run}: {value:.3f}")
        print(f"  (the real drums: {real:.3f})")
    for path in reports:
        print(f"Report: {path}")
    print(f"Evaluation: {os.path.join(_WORKDIR.value, 'evaluation.csv')}")
    print(f"Done in {time.perf_counter() - start:.0f} s.")


def _vqvae_config(stem: str):
    config = (vqvae_drums if stem == "drums" else vqvae_drumless).get_config("tiny")
    config.data.dataset, config.data.data_dir = _DATASET.value, _DATA_DIR.value
    return config


if __name__ == "__main__":
    app.run(main)
