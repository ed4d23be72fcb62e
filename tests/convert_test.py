"""Official checkpoint conversion: names, layouts, key checking and file reading."""

import json
import pathlib
import sys

import jax
import numpy as np
import pytest

from jdrum import runs, torch_io
from jdrum.convert import vqvae as convert
from jdrum.models import quantizer

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "reference"


def _load(name):
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"reference fixture missing: {path} (the shared fixtures checkout is needed)")
    return path


@pytest.fixture(scope="module")
def ref():
    with np.load(_load("vqvae_small.npz")) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def state_dict(ref):
    return {k.removeprefix("param/"): v for k, v in ref.items() if k.startswith("param/")}


@pytest.fixture(scope="module")
def manifest():
    return json.loads(_load("manifest_full.json").read_text())


def test_layouts_of_converted_entries(state_dict):
    variables = convert.vqvae_variables(state_dict)
    params = variables["params"]
    np.testing.assert_array_equal(
        params["encoder"]["blocks_1"]["rc"]["conv"]["kernel"],
        state_dict["encoder.blocks.1.block.3.conv.weight"].transpose(2, 1, 0),
    )
    np.testing.assert_array_equal(
        params["decoder"]["block0"]["norm"]["scale"], state_dict["decoder.block0.block.1.weight"]
    )
    np.testing.assert_array_equal(
        params["decoder"]["heads_1"]["bias"], state_dict["decoder.heads.1.bias"]
    )
    codebook = variables[quantizer.COLLECTION]["quantizer"]
    np.testing.assert_array_equal(codebook["k"], state_dict["vq.k"])
    np.testing.assert_array_equal(codebook["k_sum"], state_dict["vq.k"])
    np.testing.assert_array_equal(codebook["k_elem"], np.ones(32, np.float32))
    assert bool(codebook["initialised"])
    assert not convert.vqvae_variables(state_dict, initialised=False)[quantizer.COLLECTION][
        "quantizer"
    ]["initialised"]
    leaves = jax.tree.leaves(variables["params"])
    assert len(leaves) == len(state_dict) - 1  # every entry but vq.k is a parameter


def test_unknown_and_missing_keys_are_reported(state_dict):
    changed = dict(state_dict)
    changed["vq.k_sum"] = changed["vq.k"]
    del changed["decoder.heads.1.bias"]
    with pytest.raises(ValueError) as error:
        convert.vqvae_variables(changed)
    message = str(error.value)
    assert "unknown keys ['vq.k_sum']" in message
    assert "missing keys ['decoder.heads.1.bias']" in message
    assert "\n" not in message


def test_wrong_rank_is_reported(state_dict):
    changed = dict(state_dict, **{"encoder.head0.weight": state_dict["encoder.head0.bias"]})
    with pytest.raises(ValueError, match="encoder.head0.weight"):
        convert.vqvae_variables(changed)


def test_checkpoint_keys_and_hps_are_checked(ref, state_dict):
    checkpoint = {"model": state_dict, "mean": ref["ckpt/mean"], "std": ref["ckpt/std"]}
    no_std = {k: v for k, v in checkpoint.items() if k != "std"}
    with pytest.raises(ValueError, match=r"unknown keys \['epoch'\]; missing keys \['std'\]"):
        convert.vqvae_from_checkpoint({**no_std, "epoch": 3})
    with pytest.raises(ValueError, match="codebook_size 1024"):
        convert.vqvae_from_checkpoint({**checkpoint, "hps": {"codebook_size": 1024}})
    narrow_head = {**state_dict, "decoder.heads.0.weight": np.zeros((80, 32, 3), np.float32)}
    with pytest.raises(ValueError, match="wrong shapes.*heads_0"):
        convert.vqvae_from_checkpoint({**checkpoint, "model": narrow_head})


@pytest.mark.parametrize("name,codebook_size", [("vq1_target.pkl", 32), ("vq1_others.pkl", 1024)])
def test_full_size_state_dict_names(manifest, name, codebook_size):
    entry = manifest[name]
    state_dict = {
        item["name"]: np.broadcast_to(np.float32(0), item["shape"]) for item in entry["state_dict"]
    }
    checkpoint = {
        "model": state_dict,
        "mean": np.zeros((1, 80, 1), np.float32),
        "std": np.ones((1, 80, 1), np.float32),
        "hps": entry["hps"],
    }
    config, variables, stats = convert.vqvae_from_checkpoint(checkpoint)
    assert config == {
        "codebook_size": codebook_size,
        "width": 512,
        "latent": 64,
        "n_mels": 80,
        "down": (0.5, 0.5),
        "up": (2, 2),
        "commit_beta": 0.02,
    }
    assert sum(x.size for x in jax.tree.leaves(variables["params"])) == 9_950_640
    assert stats.mean.shape == stats.std.shape == (80,)


def test_npz_checkpoint_round_trip(tmp_path, ref, state_dict):
    path = tmp_path / "vq1_target.npz"
    arrays = {f"model/{k}": v for k, v in state_dict.items()}
    np.savez(
        path,
        **arrays,
        mean=ref["ckpt/mean"],
        std=ref["ckpt/std"],
        **{"hps/codebook_size": np.int64(32), "hps/commit_beta": np.float32(0.02)},
    )
    config, variables, stats = convert.load_official_vqvae(path)
    assert config["codebook_size"] == 32 and config["width"] == 64
    expected = convert.vqvae_variables(state_dict)
    jax.tree.map(np.testing.assert_array_equal, variables, expected)
    np.testing.assert_array_equal(stats.mean, ref["ckpt/mean"].reshape(-1))
    np.testing.assert_array_equal(stats.std, ref["ckpt/std"].reshape(-1))


def test_pickles_without_torch_say_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "vq1_target.pkl"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install 'jdrum\[convert\]'"):
        torch_io.read_checkpoint(path)


def test_unknown_file_type(tmp_path):
    with pytest.raises(ValueError, match="unknown checkpoint type"):
        torch_io.read_checkpoint(tmp_path / "model.safetensors")


def test_torch_checkpoint_round_trip(tmp_path, ref, state_dict):
    torch = pytest.importorskip("torch")
    path = tmp_path / "vq1_target.pkl"
    checkpoint = {
        "model": {k: torch.from_numpy(v) for k, v in state_dict.items()},
        "mean": ref["ckpt/mean"],
        "std": ref["ckpt/std"],
        "hps": {"codebook_size": 32, "downsample_ratios": [0.5, 0.5], "upsample_ratios": [2, 2]},
    }
    torch.save(checkpoint, path)
    config, variables, _ = convert.load_official_vqvae(path)
    assert config["codebook_size"] == 32
    jax.tree.map(np.testing.assert_array_equal, variables, convert.vqvae_variables(state_dict))


def test_command_line_writes_a_run_that_tokenizes_like_the_reference(tmp_path, ref, state_dict):
    import subprocess

    path = tmp_path / "vq1_target.npz"
    arrays = {f"model/{k}": v for k, v in state_dict.items()}
    np.savez(path, **arrays, mean=ref["ckpt/mean"], std=ref["ckpt/std"])
    out = tmp_path / "run" / "vqvae_drums"
    command = [sys.executable, "-m", "jdrum.convert", f"--vqvae={path}", f"--out={out}"]
    subprocess.run(command, check=True, timeout=300, capture_output=True)
    model, variables, stats = runs.load_vqvae(out)
    np.testing.assert_array_equal(stats.mean, ref["ckpt/mean"].reshape(-1))
    tokens = model.apply(variables, ref["in/mel_normalized"], method=model.encode)
    np.testing.assert_array_equal(np.asarray(tokens), ref["out/tokens"])
    bad = subprocess.run(
        [sys.executable, "-m", "jdrum.convert", f"--vqvae={tmp_path / 'missing.npz'}", "--out=x"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("jdrum.convert: ")


def test_da2_tracker_file_converts_to_the_reference_head():
    from jdrum.beat import network as tracker

    path = _load("tracker_small.npz")
    with np.load(path) as npz:
        features, softmax = npz["in/features"], npz["out/softmax"]
        low = npz["out/low_beat_info"]
    variables = runs.da2_tracker_variables(path)
    embedding, probabilities = tracker.track(variables, features)
    np.testing.assert_allclose(np.asarray(embedding)[0], low, atol=1e-4)
    np.testing.assert_allclose(np.asarray(probabilities), softmax, atol=1e-4)
    # The same file as a named tracker of the data builders: audio in, features inside.
    audio_BxL = np.random.default_rng(0).standard_normal((2, 44_100)).astype(np.float32) * 0.1
    emb, probs = runs.tracker(f"da2:{path}")(audio_BxL)
    assert emb.shape == (2, 100, 50) and probs.shape == (2, 100, 3)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
