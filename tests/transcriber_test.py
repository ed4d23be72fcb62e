"""The drum transcriber: classes, model shapes, targets, peak picking, chunked activations,
scores, a short `jdrum.train` run that writes a loadable transcriber, and loading errors."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import transcriber as transcriber_configs
from jdrum import data, runs, train
from jdrum.datasets import soundfont, synth
from jdrum.inference import transcription
from jdrum.models import transcriber as model_lib
from jdrum.trainers import transcriber as trainer

SR = 44_100
HOP = 512


def test_classes_fold_general_midi_keys():
    assert len(transcription.CLASSES) == len(transcription.CLASS_KEYS) == 9
    for c, key in enumerate(transcription.CLASS_KEYS):
        assert transcription.class_of_key(key) == c  # each class exports a key of its own
    folded = {37: "snare", 39: "snare", 40: "snare", 44: "closed_hihat", 35: "kick"}
    folded |= {41: "low_tom", 45: "mid_tom", 48: "high_tom", 57: "crash", 52: "crash"}
    folded |= {55: "crash", 59: "ride", 53: "ride"}
    for key, name in folded.items():
        assert transcription.CLASSES[transcription.class_of_key(key)] == name, key
    assert transcription.class_of_key(56) is None  # cowbell: no class
    assert transcription.class_of_key(36.0) == 0  # float keys, as in note arrays
    # synthstems plays one key per class, each the class's own.
    assert sorted(soundfont.DRUM_KEYS.values()) == sorted(transcription.CLASS_KEYS)


def test_model_shapes():
    config = model_lib.TranscriberConfig(conv_channels=(4, 8), dense=16, hidden=8)
    model = config.make()
    audio_BxL = np.random.default_rng(0).normal(0, 0.1, (2, 64 * HOP)).astype(np.float32)
    features_BxTxF = model_lib.features(audio_BxL, config)
    assert features_BxTxF.shape == (2, 64, 80 + 40) == (2, 64, config.num_features)
    params = model.init(jax.random.key(0), features_BxTxF)
    logits, velocity = model.apply(params, features_BxTxF)
    assert logits.shape == velocity.shape == (2, 64, 9)
    assert logits.dtype == velocity.dtype == jnp.float32
    assert np.all((np.asarray(velocity) > 0) & (np.asarray(velocity) < 1))
    assert config.frame_rate == pytest.approx(86.1328125)
    # Without pitch bins the input is the front end's log-mel alone.
    mel_only = model_lib.TranscriberConfig(pitch_bins=0)
    np.testing.assert_allclose(
        model_lib.features(audio_BxL, mel_only), features_BxTxF[..., :80], atol=1e-6
    )


def _bump(num_frames: int, centre: float, height: float, width: float = 1.0) -> np.ndarray:
    t = np.arange(num_frames)
    return height * np.exp(-0.5 * ((t - centre) / width) ** 2)


def test_peak_picking_finds_notes_on_synthetic_activations():
    onset = np.zeros((200, 9))
    onset[:, 0] = _bump(200, 20, 0.9) + _bump(200, 100.3, 0.8)  # two kicks, one off-frame
    onset[:, 0] += _bump(200, 104, 0.6)  # within min_distance of a higher peak: dropped
    onset[:, 1] = _bump(200, 60, 0.3)  # below the threshold
    onset[150:153, 2] = 0.7  # a plateau gives one note
    velocity = np.full((200, 9), 0.5)
    velocity[20, 0] = 1.0
    notes = model_lib.pick_peaks(onset, velocity, threshold=0.5, min_distance=4)
    assert notes.shape == (3, 3)
    np.testing.assert_array_equal(notes[:, 1], [36, 36, 42])
    np.testing.assert_array_equal(notes[:, 2], [127, 64, 64])
    np.testing.assert_allclose(notes[0, 0], model_lib.frame_times(20), atol=1e-9)
    # Parabolic interpolation moves the off-frame peak towards its true centre.
    assert abs(notes[1, 0] - model_lib.frame_times(100.3)) < 0.1 * HOP / SR
    assert notes[1, 0] > model_lib.frame_times(100)
    # A plateau's first frame, moved half a frame towards the rest of it.
    np.testing.assert_allclose(notes[2, 0], model_lib.frame_times(150.5), atol=1e-9)
    assert np.all(np.diff(notes[:, 0]) >= 0)
    # A per-class threshold; no interpolation puts notes on frame centres.
    notes = model_lib.pick_peaks(onset, velocity, [0.5, 0.2] + [0.5] * 7, 4, interpolate=False)
    np.testing.assert_array_equal(notes[:, 1], [36, 38, 36, 42])
    np.testing.assert_allclose(notes[2, 0], model_lib.frame_times(100))
    assert model_lib.pick_peaks(np.zeros((0, 9)), np.zeros((0, 9))).shape == (0, 3)


def test_one_tom_at_a_time():
    onset = np.zeros((40, 9))
    onset[:, 4] = _bump(40, 10, 0.9)  # a low tom, heard faintly as a mid tom too
    onset[:, 5] = _bump(40, 11, 0.6) + _bump(40, 30, 0.8)
    onset[:, 0] = _bump(40, 10, 0.7)  # a kick with it stays
    velocity = np.full((40, 9), 0.5)
    notes = model_lib.pick_peaks(onset, velocity)
    np.testing.assert_array_equal(notes[:, 1], [36, 43, 47])
    np.testing.assert_allclose(notes[2, 0], model_lib.frame_times(30), atol=1e-9)
    every = model_lib.pick_peaks(onset, velocity, exclusive=())
    np.testing.assert_array_equal(every[:, 1], [36, 43, 47, 47])


def test_targets_from_notes():
    time_of = lambda frame: model_lib.frame_times(frame)
    notes = np.array(
        [
            [time_of(10), 36, 100],
            [time_of(10) + 0.001, 38, 64],  # 1 ms late: still frame 10
            [time_of(30), 44, 127],  # pedal hi-hat: closed hi-hat
            [time_of(40), 56, 90],  # cowbell: no class
            [time_of(600), 36, 90],  # beyond the clip
        ]
    )
    onsets, velocity = trainer.note_targets(notes, 64, HOP, neighbour=0.5)
    assert model_lib.onset_frames(time_of(10) + 0.001) == 10
    assert onsets.shape == velocity.shape == (64, 9)
    np.testing.assert_array_equal(onsets[9:12, 0], [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(onsets[10, 1], 1.0)
    np.testing.assert_array_equal(onsets[30, 2], 1.0)
    assert onsets.sum() == 3 * 2.0  # three notes, each 1 + 2 x 0.5
    np.testing.assert_allclose(velocity[10, :2], [100 / 127, 64 / 127])
    np.testing.assert_allclose(velocity[30, 2], 1.0)
    assert np.count_nonzero(velocity) == 3
    assert not trainer.note_targets(notes, 64, HOP, neighbour=0.0)[0][9].any()


def test_chunked_activations_match_one_pass():
    def predict(batch_BxL):  # per frame: the mean of its samples, in every class
        means = batch_BxL.reshape(batch_BxL.shape[0], -1, HOP).mean(-1)
        return np.repeat(means[..., None], 9, -1), np.zeros((*means.shape, 9))

    x = np.random.default_rng(1).normal(size=(37 * HOP + 100)).astype(np.float32)
    onset, velocity = model_lib.activations(predict, x, HOP, 8, 3, batch_size=2)
    assert onset.shape == velocity.shape == (37, 9)
    np.testing.assert_allclose(onset[:, 4], x[: 37 * HOP].reshape(37, HOP).mean(-1), rtol=1e-6)


def test_scores_match_notes_per_class_within_50_ms():
    reference = np.array([[1.0, 36, 100], [2.0, 38, 80], [3.0, 42, 60], [4.0, 49, 100]])
    estimated = np.array(
        [[1.03, 36, 90], [2.0, 40, 60], [3.06, 42, 60], [4.0, 51, 100], [5.0, 36, 50]]
    )
    scores = model_lib.score([reference], [estimated])
    kick, snare = scores["classes"]["kick"], scores["classes"]["snare"]
    assert (kick["matched"], kick["reference"], kick["estimated"]) == (1, 1, 2)
    assert kick["precision"] == 0.5 and kick["recall"] == 1.0
    assert snare["f1"] == 1.0 and snare["velocity_error"] == 20.0  # key 40 folds into snare
    assert scores["classes"]["closed_hihat"]["f1"] == 0.0  # 60 ms late
    assert scores["classes"]["crash"]["recall"] == 0.0  # a ride is not a crash
    assert np.isnan(scores["classes"]["low_tom"]["velocity_error"])
    assert scores["all"]["matched"] == 2 and scores["all"]["velocity_error"] == 15.0
    assert scores["song_f1"].shape == (1,) and scores["song_class_f1"].shape == (1, 9)
    assert np.isnan(scores["song_class_f1"][0, 4])  # no toms in either


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    data.builder("synthstems/tiny", data_dir).download_and_prepare()
    return data_dir


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A run directory with a transcriber trained for 4 steps through `jdrum.train`'s stage."""
    config = transcriber_configs.get_config("tiny")
    config.data.update(dataset="synthstems/tiny", data_dir=str(data_dir), batch_size=2)
    config.model.update(conv_channels=(4,), dense=8, hidden=4)
    config.inference.update(chunk_frames=256, context_frames=32, batch_size=2)
    config.eval.max_songs = 1
    config.train.update(num_steps=4, log_every=2, checkpoint_every=4)
    run_dir = tmp_path_factory.mktemp("run")
    train.STAGES[config.stage](config, str(run_dir / runs.TRANSCRIBER_DIR))
    return run_dir


def test_training_writes_a_loadable_transcriber(trained):
    for path in (trained, trained / runs.TRANSCRIBER_DIR):
        transcriber = transcription.load(path)
        assert transcriber.workdir == os.fspath(trained / runs.TRANSCRIBER_DIR)
    song = synth.make_song(5, synth.SynthConfig(min_seconds=3.0, max_seconds=4.0))
    transcriber.threshold[:] = 0.0  # an untrained net: every local maximum is a note
    notes = transcriber.notes(song.drums)
    assert notes.ndim == 2 and notes.shape[1] == 3 and len(notes) > 0
    assert np.all(np.diff(notes[:, 0]) >= 0)
    assert np.all((notes[:, 0] >= 0) & (notes[:, 0] <= len(song.drums) / SR))
    assert set(notes[:, 1].astype(int)) <= set(transcription.CLASS_KEYS)
    assert np.all((notes[:, 2] >= 1) & (notes[:, 2] <= 127))
    # Another sample rate is resampled: the same onsets, give or take a frame.
    half = transcriber.notes(song.drums[::2], sample_rate=SR // 2)
    assert abs(len(half) - len(notes)) < 0.5 * len(notes)
    assert transcriber.notes(np.zeros(100, np.float32)).shape == (0, 3)
    with pytest.raises(ValueError, match="mono"):
        transcriber.notes(np.zeros((2, SR), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        transcriber.notes(np.full(SR, np.nan, np.float32))
    result = transcription.evaluate(transcriber, [song])
    assert result["songs"] == 1 and set(result["classes"]) == set(transcription.CLASSES)
    assert 0.0 <= result["all"]["f1"] <= 1.0
    assert "kick" in transcription.format_table(result)


def test_missing_transcriber_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        transcription.load(tmp_path)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path) in message
    expected = f"--config configs/transcriber.py --workdir {tmp_path / 'transcriber'}"
    assert expected in message
    with pytest.raises(FileNotFoundError, match=f"--workdir {tmp_path / 'transcriber'}$"):
        transcription.load(tmp_path / "transcriber")


def test_write_and_load_transcriber(tmp_path):
    config = transcriber_configs.get_config("tiny")
    config.model.update(conv_channels=(4,), dense=8, hidden=4)
    model = trainer.make_model(config)
    params = model.init(jax.random.key(1), jnp.zeros((1, 8, 120)))
    runs.write_transcriber(str(tmp_path), config, params)
    loaded_model, loaded, loaded_config = runs.load_transcriber(tmp_path)
    assert loaded_config.stage == "transcriber" and loaded_model == model
    jax.tree.map(np.testing.assert_array_equal, loaded, params)
    config.model.hidden = 5
    with pytest.raises(ValueError, match="wrong shapes"):
        runs.write_transcriber(str(tmp_path / "other"), config, params)
