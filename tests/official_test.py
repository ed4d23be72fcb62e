"""`python -m jdrum.convert --official`: a run directory from (fake) official files, sampled
end to end by `jdrum.sample`. The fake files hold the reference fixtures' small weights in the
official files' layouts, as .npz (torch is not needed to read them)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from configs.converted import BASE_CONFIGS
from jdrum import audio
from jdrum.convert import official
from jdrum.datasets import synth
from jdrum.inference import pipeline


def _params(ref, prefix="param/"):
    return {k[len(prefix) :]: v for k, v in ref.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory, load_reference):
    root = tmp_path_factory.mktemp("official")
    vq = load_reference("vqvae_small.npz")
    drums = {f"model/{k}": v for k, v in _params(vq).items()}
    stats = {"mean": vq["ckpt/mean"], "std": vq["ckpt/std"]}
    np.savez(root / "vq1_target.npz", **drums, **stats)
    drumless = dict(drums)  # the drumless VQ-VAE has 1024 codes
    rng = np.random.default_rng(0)
    drumless["model/vq.k"] = rng.standard_normal((1024, drums["model/vq.k"].shape[1]))
    np.savez(root / "vq1_others.npz", **drumless, **stats)
    lm = _params(load_reference("lm_small.npz"))
    np.savez(root / "exp1.npz", **{f"model/{k}": v for k, v in lm.items()})
    (root / "vocoder").mkdir()
    vocoder = _params(load_reference("hifigan_small.npz"))
    np.savez(
        root / "vocoder" / "generator.npz", **{f"generator/{k}": v for k, v in vocoder.items()}
    )
    tracker = _params(load_reference("tracker_small.npz"))
    np.savez(root / "RNNBeatProc.npz", **tracker)
    return root


# ~2.5 min on 2 cores; convert_test converts the official layout in `make test`.
@pytest.mark.slow
def test_official_run_directory_samples_end_to_end(official_dir, tmp_path):
    run = tmp_path / "official_exp1"
    command = [sys.executable, "-m", "jdrum.convert", f"--official={official_dir}", "--exp=1"]
    subprocess.run(command + [f"--out={run}"], check=True, timeout=600)
    for part in ("vqvae_drums", "vqvae_drumless", "lm", "vocoder"):
        assert (run / part / "config.json").exists()
    assert json.loads((run / "tracker.json").read_text())["tracker"] == "da2:tracker_da2.npz"
    pipe = pipeline.Pipeline(run)
    assert pipe.has_vocoder and pipe.lm.config.n_ctx == 256 and pipe.lm.config.beat == "low"
    assert not pipeline.Pipeline(run, vocoder="griffin-lim").has_vocoder
    with pytest.raises(ValueError, match="vocoder must be one of"):
        pipeline.Pipeline(run, vocoder="melgan")
    song = synth.make_song(3, synth.SynthConfig(min_seconds=8, max_seconds=8))
    path = tmp_path / "song.wav"
    soundfile.write(path, song.drumless, audio.SAMPLE_RATE)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jdrum.sample", f"--run={run}", f"--input={path}"]
    subprocess.run(command + [f"--output={out}", "--num_samples=2"], check=True, timeout=900)
    summary = json.loads((out / "summary.json").read_text())
    (entry,) = summary["inputs"]
    assert entry["error"] is None and len(entry["takes"]) == 2
    assert summary["vocoder"] == "hifigan" and summary["settings"]["tracker"].startswith("da2:")
    drums, rate = soundfile.read(out / "song_take1_drums.wav")
    assert rate == audio.SAMPLE_RATE and len(drums) == len(song.drumless)
    assert (out / "report.html").exists()


def test_missing_official_file_is_a_clear_error(official_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="none of exp11"):
        official.convert_official(str(official_dir), 11, str(tmp_path / "run"), BASE_CONFIGS)
    with pytest.raises(ValueError, match="official experiments are"):
        official.convert_official(str(official_dir), 3, str(tmp_path / "run"), BASE_CONFIGS)
