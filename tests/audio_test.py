"""jdrum.audio: loading every format, errors, the log-mel front end, stats, clip slicing."""

import os

import jax
import librosa
import numpy as np
import pytest
import soundfile

from jdrum import audio

SR = audio.SAMPLE_RATE


def _tone(seconds=0.5, rate=SR, freq=1000.0, amp=0.5, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    if channels > 1:
        x = np.stack([x * (c + 1) / channels for c in range(channels)], axis=-1)
    return x.astype(np.float32)


def _dominant_freq(x, rate=SR):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


# ------------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    "ext,subtype,tol",
    [
        (".wav", "PCM_16", 1e-4),
        (".wav", "PCM_24", 1e-6),
        (".wav", "FLOAT", 1e-7),
        (".flac", "PCM_16", 1e-4),
        (".flac", "PCM_24", 1e-6),
    ],
)
def test_load_lossless_formats_round_trip(tmp_path, ext, subtype, tol):
    x = _tone()
    path = tmp_path / f"tone{ext}"
    soundfile.write(path, x, SR, subtype=subtype)
    y = audio.load(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=tol)


@pytest.mark.parametrize("ext", [".ogg", ".mp3"])
def test_load_lossy_formats(tmp_path, ext):
    x = _tone(seconds=1.0)
    path = tmp_path / f"tone{ext}"
    soundfile.write(path, x, SR)
    y = audio.load(path)
    assert y.dtype == np.float32
    # Codecs add a little delay / padding, never much.
    assert abs(len(y) - len(x)) < 0.06 * SR
    assert abs(_dominant_freq(y) - 1000.0) < 5.0
    np.testing.assert_allclose(np.sqrt(np.mean(y**2)), np.sqrt(np.mean(x**2)), rtol=0.1)


def test_load_m4a_through_ffmpeg(tmp_path):
    av = pytest.importorskip("av")
    x = _tone(seconds=1.0, rate=48_000)  # AAC in an MP4 container, stereo at 48 kHz
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48_000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
        frame.sample_rate = 48_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    y = audio.load(path)
    assert y.dtype == np.float32
    assert abs(len(y) - SR) < 0.06 * SR
    assert abs(_dominant_freq(y) - 1000.0) < 5.0
    np.testing.assert_allclose(np.sqrt(np.mean(y**2)), np.sqrt(np.mean(x**2)), rtol=0.1)


def test_a_file_neither_libsndfile_nor_ffmpeg_reads_is_one_line(tmp_path):
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + b"garbage" * 50)
    with pytest.raises(audio.AudioError, match=r"song.m4a: not a readable audio file \(") as error:
        audio.load(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("rate", [8_000, 16_000, 22_050, 32_000, 48_000, 96_000])
def test_load_resamples_any_rate(tmp_path, rate):
    x = _tone(seconds=0.5, rate=rate, freq=440.0)
    path = tmp_path / f"tone_{rate}.wav"
    soundfile.write(path, x, rate, subtype="FLOAT")
    y = audio.load(path)
    assert abs(len(y) - SR // 2) <= 1
    assert abs(_dominant_freq(y) - 440.0) < 3.0
    np.testing.assert_allclose(np.abs(y[2000:-2000]).max(), 0.5, atol=0.01)


def test_load_averages_channels(tmp_path):
    x = _tone(channels=2)  # channel 0 at amplitude 0.25, channel 1 at 0.5
    path = tmp_path / "stereo.wav"
    soundfile.write(path, x, SR, subtype="FLOAT")
    np.testing.assert_allclose(audio.load(path), x.mean(axis=1), atol=1e-7)


def test_load_divides_by_peak_only_above_one(tmp_path):
    loud, quiet = tmp_path / "loud.wav", tmp_path / "quiet.wav"
    soundfile.write(loud, _tone(amp=2.0), SR, subtype="FLOAT")
    soundfile.write(quiet, _tone(amp=0.1), SR, subtype="FLOAT")
    np.testing.assert_allclose(np.abs(audio.load(loud)).max(), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.abs(audio.load(quiet)).max(), 0.1, atol=1e-4)


def _assert_one_line_error(path, match):
    with pytest.raises(audio.AudioError) as info:
        audio.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert match in message


def test_load_errors_name_the_file(tmp_path):
    _assert_one_line_error(tmp_path / "missing.wav", "no such file")
    _assert_one_line_error(tmp_path, "directory")

    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), SR)
    _assert_one_line_error(empty, "no samples")

    nan = tmp_path / "nan.wav"
    x = _tone()
    x[100] = np.nan
    soundfile.write(nan, x, SR, subtype="FLOAT")
    _assert_one_line_error(nan, "NaN")

    text = tmp_path / "notes.wav"
    text.write_text("these are not samples\n" * 20)
    _assert_one_line_error(text, "not a readable audio file")

    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(SR, np.float32), SR)
    _assert_one_line_error(silent, "silent")
    np.testing.assert_array_equal(audio.load(silent, allow_silent=True), np.zeros(SR))


def test_save_clips_instead_of_wrapping(tmp_path):
    path = tmp_path / "out" / "loud.wav"
    x = np.array([0.0, 1.0, -1.0, 1.5, -1.5, 0.5], np.float32)
    audio.save(path, x)
    y, rate = soundfile.read(path, dtype="int16")
    assert rate == SR
    np.testing.assert_array_equal(y, [0, 32767, -32768, 32767, -32768, 16384])
    with pytest.raises(audio.AudioError, match="NaN"):
        audio.save(tmp_path / "bad.wav", np.array([np.nan]))
    assert not os.path.exists(tmp_path / "bad.wav")


def test_pcm16_round_trip():
    x = np.array([-1.0, -0.5, 0.0, 0.25, 0.999, 1.0, 1.2], np.float32)
    pcm = audio.to_pcm16(x)
    np.testing.assert_array_equal(pcm, [-32768, -16384, 0, 8192, 32735, 32767, 32767])
    np.testing.assert_allclose(audio.from_pcm16(pcm)[:5], x[:5], atol=1 / 32768)


# ----------------------------------------------------------------------------------- mel


def reference_log_mel(x):
    """REFERENCE §1.3 in float64 with librosa: reflect pad 384, periodic Hann STFT without
    centring, magnitude, Slaney mel (area-normalised, 0-22050 Hz), log10 with a 1e-5 floor."""
    padded = np.pad(np.asarray(x, np.float64), 384, mode="reflect")
    stft = librosa.stft(padded, n_fft=1024, hop_length=256, win_length=1024, center=False)
    basis = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=80, fmin=0.0, fmax=None, dtype=np.float64)
    return np.log10(np.maximum(basis @ np.abs(stft), 1e-5))


def _signals():
    rng = np.random.default_rng(0)
    n = 2**16
    from jdrum.datasets import synth

    song = synth.make_song(3, synth.SynthConfig(min_seconds=4.0, max_seconds=4.0))
    return {
        "noise": rng.uniform(-1, 1, n).astype(np.float32),
        "sweep": (0.5 * librosa.chirp(fmin=20, fmax=20_000, sr=SR, length=n)).astype(np.float32),
        "synthstems": song.mix[SR : SR + n].astype(np.float32),
    }


@pytest.fixture(scope="module")
def signals():
    return _signals()


@pytest.mark.parametrize("name", ["noise", "sweep", "synthstems"])
def test_log_mel_is_the_reference_algorithm(signals, name):
    # In float64 the only differences left are the FFT's rounding: the maths is the reference.
    x = signals[name].astype(np.float64)
    with jax.enable_x64(True):
        mel = np.asarray(audio.log_mel(x))
    assert mel.dtype == np.float64
    np.testing.assert_allclose(mel, reference_log_mel(x), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["noise", "sweep", "synthstems"])
def test_log_mel_float32_matches_reference(signals, name):
    x = signals[name]
    mel = np.asarray(jax.jit(audio.log_mel)(x))
    ref = reference_log_mel(x)
    assert mel.dtype == np.float32 and mel.shape == ref.shape == (80, len(x) // 256)
    error = np.abs(mel - ref)
    # Bins within two decades of the 1e-5 floor are below float32's resolution of the frame's
    # loudest bin for pure tones (the sweep); everywhere else the tolerance is 1e-4.
    audible = ref > -3.0
    assert error[audible].max() <= 1e-4
    assert error.max() <= 3e-3


def test_log_mel_clip_shape_under_jit():
    x = np.random.default_rng(1).standard_normal(2**20).astype(np.float32) * 0.1
    mel = jax.jit(audio.log_mel)(x)
    assert mel.shape == (80, 4096) and mel.dtype == np.float32
    # Batched input gives the same result per example.
    batch = np.stack([x[: 2**16], -x[: 2**16]])
    np.testing.assert_allclose(
        jax.jit(audio.log_mel)(batch)[1], audio.log_mel(-x[: 2**16]), atol=1e-5
    )


def test_log_mel_frame_geometry():
    # Frame j covers samples [256 j - 384, 256 j + 640): an impulse at sample 5000 is seen by
    # frames 18..21 only (frame 17 ends at sample 4992, frame 22 starts at 5248).
    x = np.zeros(2**14, np.float32)
    x[5000] = 1.0
    loud = np.flatnonzero(np.asarray(audio.log_mel(x)).mean(axis=0) > -4.9)
    np.testing.assert_array_equal(loud, np.arange(18, 22))
    assert audio.DEFAULT_SPECTROGRAM.num_frames(2**20) == 4096


# --------------------------------------------------------------------------- statistics


def test_mel_stats_match_numpy_over_all_frames():
    rng = np.random.default_rng(2)
    mels = [rng.normal(size=(3, 80, 50)) * 2 + 1, rng.normal(size=(80, 7)) - 3]
    mels[0][:, 5, :] = 4.0  # a zero-variance bin
    mels[1][5, :] = 4.0
    accumulator = audio.MelStatsAccumulator()
    for mel in mels:
        accumulator.update(mel)
    stats = accumulator.result()
    frames = np.concatenate([np.moveaxis(mels[0], 1, 2).reshape(-1, 80), mels[1].T])
    np.testing.assert_allclose(stats.mean, frames.mean(axis=0), atol=1e-5)
    expected_std = frames.std(axis=0)
    expected_std[5] = 1.0
    np.testing.assert_allclose(stats.std, expected_std, rtol=1e-5)
    normalised = stats.normalise(mels[0])
    np.testing.assert_allclose(stats.denormalise(normalised), mels[0], atol=1e-5)
    assert abs(normalised[:, 3].mean()) < 0.2
    restored = audio.MelStats.from_dict(stats.to_dict())
    np.testing.assert_array_equal(restored.mean, stats.mean)
    with pytest.raises(ValueError, match="no frames"):
        audio.MelStatsAccumulator().result()


# ------------------------------------------------------------------------ clip slicing


def test_fixed_clip_starts():
    np.testing.assert_array_equal(audio.fixed_clip_starts(10, 4, 2), [0, 2, 4, 6])
    np.testing.assert_array_equal(audio.fixed_clip_starts(2**21, 2**20, 2**19), [0, 2**19, 2**20])
    assert audio.fixed_clip_starts(3, 4, 2).size == 0


def test_downbeat_clip_starts_follow_the_reference_rule():
    # 2 s bars; clip 2**20 samples (23.78 s); gap 24 s as in the reference.
    downbeats = np.arange(0.5, 120.0, 2.0)
    starts = audio.downbeat_clip_starts(downbeats, 120 * SR, 2**20, SR, min_gap_s=24.0)
    # Start 0.5 s; the first downbeat more than 24 s later is 26.5 s, then 52.5, 78.5, 104.5;
    # 104.5 s has no downbeat > 24 s after it, so the audio from there is dropped.
    np.testing.assert_array_equal(starts, np.round(np.array([0.5, 26.5, 52.5, 78.5]) * SR))
    assert np.all(np.diff(starts) >= 2**20)
    assert audio.downbeat_clip_starts([], 10 * SR, 2**17).size == 0


def test_is_silent_uses_the_log10_threshold():
    noise = np.random.default_rng(3).standard_normal(2**16).astype(np.float32)
    silence = np.zeros(2**16, np.float32)
    assert audio.is_silent(audio.log_mel(silence))
    assert not audio.is_silent(audio.log_mel(0.01 * noise))  # mean log-mel about -2.4
    # The reference's -8 could never fire on a log10 mel (floor -5); -3.47 fires on quiet clips.
    quiet = np.array(audio.log_mel(1e-4 * noise))  # mean log-mel about -4.4
    assert quiet.mean() > -8 and audio.is_silent(quiet)
    # More than half of the frames must be quiet.
    half = np.concatenate([silence[: 2**15], 0.01 * noise[: 2**15]])
    assert not audio.is_silent(audio.log_mel(half))
    three_quarters = np.concatenate([silence[: 3 * 2**14], 0.01 * noise[: 2**14]])
    assert audio.is_silent(audio.log_mel(three_quarters))
    quiet[0, 0] = np.nan
    assert audio.is_silent(quiet)
