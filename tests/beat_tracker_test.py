"""JAX beat tracker vs madmom's RNNDownBeatProcessor and the DA2 reference fixture."""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrum.beat import dbn, features, weights
from jdrum.beat import network as tracker
from jdrum.datasets import synth

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "reference"
ATOL = 1e-4


@pytest.fixture(scope="module")
def madmom_params():
    return weights.load_madmom_downbeat_ensemble()


@pytest.fixture(scope="module")
def da2_fixture():
    path = FIXTURES / "tracker_small.npz"
    if not path.exists():
        pytest.fail(f"reference fixture missing: {path} (the shared fixtures checkout is needed)")
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def da2_params(da2_fixture):
    state_dict = {k.removeprefix("param/"): v for k, v in da2_fixture.items() if "param/" in k}
    assert len(state_dict) == 202
    return weights.da2_nodrum_params(state_dict)


def _synth_mix():
    return synth.make_song(0, synth.SynthConfig(min_seconds=6, max_seconds=8)).mix


def _white_noise():
    return np.random.default_rng(0).uniform(-0.5, 0.5, 3 * 44_100 + 17).astype(np.float32)


def _madmom_top_blstm(network, features_TxF):
    h = features_TxF
    for layer in network.layers[:-1]:
        h = layer.activate(h)
    return h


# Embedding tolerance: on white noise, network 3's first layer is ill-conditioned in float32 (its
# output moves by ~4e-4 between float32 and float64 runs, madmom's included); on music it is not.
@pytest.mark.parametrize(
    "make_audio,embedding_atol", [(_synth_mix, ATOL), (_white_noise, 1e-3)], ids=["synth", "noise"]
)
def test_madmom_weights_match_rnn_downbeat_processor(madmom_params, make_audio, embedding_atol):
    audio_L = make_audio()
    expected_Tx2 = dbn.downbeat_activations(audio_L)  # madmom: [beat, downbeat]
    features_TxF = features.madmom_features(audio_L)
    embedding_ExBxTxD, probabilities_BxTx3 = tracker.track(madmom_params, features_TxF[None])
    activations_Tx2 = np.asarray(tracker.beat_activations(probabilities_BxTx3))[0]
    assert activations_Tx2.shape == expected_Tx2.shape == (math.ceil(len(audio_L) / 441), 2)
    np.testing.assert_allclose(activations_Tx2, expected_Tx2, rtol=0, atol=ATOL)
    np.testing.assert_allclose(np.sum(probabilities_BxTx3, -1), 1.0, rtol=0, atol=1e-5)
    assert embedding_ExBxTxD.shape == (8, 1, len(features_TxF), 50)
    # The embedding of each network is madmom's top BLSTM layer output.
    from jdrum.beat.madmom_compat import madmom

    for e, path in enumerate(madmom.models.DOWNBEATS_BLSTM):
        network = madmom.ml.nn.NeuralNetwork.load(path)
        np.testing.assert_allclose(
            embedding_ExBxTxD[e, 0],
            _madmom_top_blstm(network, features_TxF),
            rtol=0,
            atol=embedding_atol,
            err_msg=f"network {e + 1}",
        )


def test_da2_nodrum_matches_reference(da2_fixture, da2_params):
    model = tracker.BeatTracker(peephole=False, head="da2")
    assert tracker.tracker_for(da2_params) == model
    features_BxTxF = da2_fixture["in/features"]
    (embedding_BxTxD, probabilities_BxTx3), state = model.apply(
        da2_params,
        features_BxTxF,
        mutable=["intermediates"],
        capture_intermediates=lambda module, _: isinstance(module, tracker.BiLSTM),
    )
    inter = state["intermediates"]
    close = lambda actual, key: np.testing.assert_allclose(
        actual, da2_fixture[key], rtol=0, atol=ATOL, err_msg=key
    )
    close(inter["blstm_0"]["__call__"][0], "out/debug_lstm_layer0")
    close(inter["blstm_1"]["__call__"][0], "out/debug_lstm_layer1")
    close(embedding_BxTxD, "out/blstm")
    close(embedding_BxTxD[0], "out/low_beat_info")
    close(inter["feature_fc_out"][0], "out/feature_fc")
    close(model.apply(da2_params, features_BxTxF, method=model.logits), "out/logits")
    close(probabilities_BxTx3, "out/softmax")
    close(tracker.beat_activations(probabilities_BxTx3)[0], "out/activation")
    # The jitted entry point gives the same.
    jit_embedding, jit_probabilities = tracker.track(da2_params, features_BxTxF)
    close(jit_embedding, "out/blstm")
    close(jit_probabilities, "out/softmax")


@pytest.mark.parametrize("peephole,head", [(False, "da2"), (True, "madmom")])
def test_converted_trees_match_init(da2_params, madmom_params, peephole, head):
    model = tracker.BeatTracker(peephole=peephole, head=head)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 5, 314), "f4"))
    converted = da2_params if head == "da2" else jax.tree.map(lambda x: x[0], madmom_params)
    expected = jax.tree.map(lambda s: (s.shape, s.dtype), shapes)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), converted) == expected


def test_batch_features_equal_per_clip_features():
    rng = np.random.default_rng(1)
    length = 44_100 + 300  # not a multiple of the hop
    clips_NxL = rng.uniform(-0.5, 0.5, (3, length)).astype(np.float32)
    batch_NxTxF = features.batch_features(list(clips_NxL))
    assert batch_NxTxF.shape == (3, math.ceil(length / 441), 314) == (3, 101, 314)
    assert batch_NxTxF.dtype == np.float32
    for clip_L, features_TxF in zip(clips_NxL, batch_NxTxF, strict=True):
        np.testing.assert_array_equal(features_TxF, features.madmom_features(clip_L))
    # ... and they are exactly what RNNDownBeatProcessor feeds its networks.
    pre_processor = dbn._rnn().processors[0]
    np.testing.assert_array_equal(batch_NxTxF[2], pre_processor(clips_NxL[2]))
    with pytest.raises(ValueError, match="equal lengths"):
        features.batch_features([clips_NxL[0], clips_NxL[1, :-1]])


@pytest.mark.parametrize("source", ["da2", "madmom"])
def test_batched_tracking_equals_per_example(da2_params, madmom_params, source):
    params = da2_params if source == "da2" else madmom_params
    rng = np.random.default_rng(2)
    features_BxTxF = rng.uniform(0, 1.5, (3, 40, 314)).astype(np.float32)
    embedding, probabilities_BxTx3 = tracker.track(params, features_BxTxF)
    batch_axis = 1 if source == "madmom" else 0
    # Equal up to float32 rounding: XLA may order a batched matmul's sums differently.
    for b in range(3):
        one_embedding, one_probabilities = tracker.track(params, features_BxTxF[b : b + 1])
        np.testing.assert_allclose(
            np.take(embedding, [b], axis=batch_axis), one_embedding, rtol=0, atol=1e-5
        )
        np.testing.assert_allclose(
            probabilities_BxTx3[b : b + 1], one_probabilities, rtol=0, atol=1e-5
        )


@pytest.mark.parametrize("peephole,head", [(False, "da2"), (True, "madmom")])
def test_bfloat16_compute_is_close_to_float32(
    da2_fixture, da2_params, madmom_params, peephole, head
):
    """dtype=bfloat16 (LSTM matmuls and dense layers): float32 outputs close to float32's."""
    params = da2_params if head == "da2" else jax.tree.map(lambda x: x[0], madmom_params)
    model = tracker.BeatTracker(peephole=peephole, head=head)
    features_BxTxF = da2_fixture["in/features"]
    embedding32, probabilities32 = model.apply(params, features_BxTxF)
    bf16 = model.clone(dtype=jnp.bfloat16)
    embedding, probabilities = jax.jit(bf16.apply)(params, features_BxTxF)
    assert embedding.dtype == probabilities.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(probabilities).sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, probabilities32, rtol=0, atol=0.02)
    # bfloat16 keeps ~3 digits; a few of the recurrent embedding values drift further.
    error = np.abs(np.asarray(embedding) - np.asarray(embedding32))
    assert error.mean() < 5e-3 and error.max() < 0.1, (error.mean(), error.max())
