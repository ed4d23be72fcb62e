"""jdrum.augment: determinism, safe output, and what each stage does to the sound."""

import dataclasses

import numpy as np
import pytest
from scipy import signal

from jdrum import audio, augment

SR = audio.SAMPLE_RATE
# Every stage off; each test turns on the stage it measures.
NONE = augment.TimbreAugment(
    eq_probability=0.0, compress_probability=0.0, reverb_probability=0.0, gain_probability=0.0
)
ALL = augment.TimbreAugment(
    eq_probability=1.0, compress_probability=1.0, reverb_probability=1.0, gain_probability=1.0
)


def _noise(seconds=2.0, level=0.05, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * level).astype(
        np.float32
    )


def _band_db(x, low_hz, high_hz):
    """Mean power (dB) of x's spectrum between two frequencies."""
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return 10 * np.log10(power[(freqs >= low_hz) & (freqs < high_hz)].mean())


def _db(x):
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-30)


# --------------------------------------------------------------------------- the whole chain


def test_same_rng_same_output_and_different_rng_different_output():
    x = _noise()
    a = augment.augment(x, np.random.default_rng(1), ALL)
    b = augment.augment(x, np.random.default_rng(1), ALL)
    c = augment.augment(x, np.random.default_rng(2), ALL)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("length", [1, 1001, 2 * SR + 7])
def test_length_and_dtype_are_kept(length):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, length)  # float64 in, float32 out
    y = augment.augment(x, np.random.default_rng(0), ALL)
    assert y.dtype == np.float32 and y.shape == (length,)


def test_output_is_finite_and_never_above_full_scale():
    loud = np.clip(_noise(1.0, level=0.6), -1, 1)  # +9 dB EQ and +6 dB gain push it over 1
    config = dataclasses.replace(ALL, gain_db=(6.0, 6.0))
    for seed in range(10):
        for config_k in (config, augment.TimbreAugment()):
            y = augment.augment(loud, np.random.default_rng(seed), config_k)
            assert np.isfinite(y).all() and np.abs(y).max() <= 1.0


def test_silence_stays_silent():
    y = augment.augment(np.zeros(SR, np.float32), np.random.default_rng(0), ALL)
    assert np.isfinite(y).all() and not y.any()


def test_with_every_stage_off_the_audio_is_unchanged():
    x = _noise(0.5)
    np.testing.assert_array_equal(augment.augment(x, np.random.default_rng(0), NONE), x)


def test_pcm16_in_pcm16_out():
    pcm = audio.to_pcm16(_noise(0.5))
    y = augment.augment_pcm16(pcm, np.random.default_rng(0), ALL)
    assert y.dtype == np.int16 and y.shape == pcm.shape and (y != pcm).any()


# --------------------------------------------------------------------------------- EQ


def _eq(low=0.0, high=0.0, peak=0.0):
    return dataclasses.replace(
        NONE,
        eq_probability=1.0,
        low_shelf_db=(low, low),
        low_shelf_hz=(200.0, 200.0),
        high_shelf_db=(high, high),
        high_shelf_hz=(4_000.0, 4_000.0),
        peak_db=(peak, peak),
        peak_hz=(1_000.0, 1_000.0),
        peak_q=(2.0, 2.0),
    )


def test_biquads_have_the_cookbook_response():
    freqs = np.array([0.0, 1_000.0, SR / 2 - 1])
    responses = {
        ("low_shelf", 9.0): [9.0, 0.0, 0.0],
        ("high_shelf", -9.0): [0.0, 0.0, -9.0],
        ("peak", 6.0): [0.0, 6.0, 0.0],
    }
    for (kind, gain_db), expected in responses.items():
        corner = {"low_shelf": 50.0, "high_shelf": 15_000.0, "peak": 1_000.0}[kind]
        sos = augment.biquad(kind, gain_db, corner, 2.0, SR)[None]
        _, h = signal.sosfreqz(sos, worN=freqs, fs=SR)
        np.testing.assert_allclose(20 * np.log10(np.abs(h)), expected, atol=0.2, err_msg=kind)


def test_low_shelf_boost_raises_the_lows_only():
    x = _noise()
    y = augment.augment(x, np.random.default_rng(0), _eq(low=9.0))
    assert _band_db(y, 20, 80) - _band_db(x, 20, 80) == pytest.approx(9.0, abs=1.0)
    assert _band_db(y, 2_000, 20_000) - _band_db(x, 2_000, 20_000) == pytest.approx(0.0, abs=0.3)


def test_high_shelf_cut_lowers_the_highs_only():
    x = _noise()
    y = augment.augment(x, np.random.default_rng(0), _eq(high=-9.0))
    assert _band_db(y, 12_000, 20_000) - _band_db(x, 12_000, 20_000) == pytest.approx(-9, abs=1)
    assert _band_db(y, 20, 500) - _band_db(x, 20, 500) == pytest.approx(0.0, abs=0.3)


def test_peaking_band_boosts_around_its_centre():
    x = _noise()
    y = augment.augment(x, np.random.default_rng(0), _eq(peak=9.0))
    assert _band_db(y, 950, 1_050) - _band_db(x, 950, 1_050) == pytest.approx(9.0, abs=1.0)
    assert _band_db(y, 8_000, 20_000) - _band_db(x, 8_000, 20_000) == pytest.approx(0, abs=0.3)


# ------------------------------------------------------------------------------ compression


def _loud_then_quiet(seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    tone = np.sin(2 * np.pi * 440 * t)
    return np.concatenate([0.5 * tone, 0.05 * tone]).astype(np.float32)  # 20 dB apart


def test_compression_narrows_the_dynamic_range():
    x = _loud_then_quiet()
    config = dataclasses.replace(
        NONE,
        compress_probability=1.0,
        threshold_db=(-12.0, -12.0),  # below the loud part's level, above the quiet part's
        ratio=(8.0, 8.0),
        attack_ms=(5.0, 5.0),
        release_ms=(50.0, 50.0),
        makeup_db=(0.0, 0.0),
    )
    y = augment.augment(x, np.random.default_rng(0), config)
    n = SR  # compare the steady ends of both halves
    before = _db(x[n // 2 : n]) - _db(x[-n // 2 :])
    after = _db(y[n // 2 : n]) - _db(y[-n // 2 :])
    assert before == pytest.approx(20.0, abs=0.1)
    assert after < before - 10.0, (before, after)


def test_compressor_attacks_fast_and_releases_slowly():
    x = _loud_then_quiet().astype(np.float64)
    y = augment.compress(x, -20.0, 8.0, 0.001, 0.2, 0.0, SR)
    gain_db = lambda a, b: _db(y[a:b]) - _db(x[a:b])
    ms = SR // 1000
    # 20 ms into the loud part the gain reduction is complete (attack 1 ms)...
    assert gain_db(20 * ms, 40 * ms) == pytest.approx(gain_db(500 * ms, 900 * ms), abs=0.5)
    # ...and 20 ms into the quiet part it still holds most of it (release 200 ms).
    assert gain_db(SR + 20 * ms, SR + 40 * ms) < 0.5 * gain_db(500 * ms, 900 * ms)
    assert gain_db(SR + 800 * ms, 2 * SR) == pytest.approx(0.0, abs=0.5)


# ----------------------------------------------------------------------------------- reverb


def test_reverb_lengthens_the_decay_of_an_impulse():
    x = np.zeros(2 * SR, np.float32)
    x[SR // 10] = 0.5
    config = dataclasses.replace(
        NONE,
        reverb_probability=1.0,
        rt60_s=(1.0, 1.0),
        predelay_ms=(20.0, 20.0),
        wet=(0.5, 0.5),
    )
    y = augment.augment(x, np.random.default_rng(0), config)
    start = SR // 10
    assert y[start] == pytest.approx(0.25)  # the dry impulse at half level
    assert np.abs(y[start + 1 : start + SR // 50]).max() < 1e-9  # nothing in the pre-delay
    # A tail that decays 60 dB per second: 0.3 s later 18 dB lower.
    window = SR // 5
    early = _db(y[start + SR // 10 : start + SR // 10 + window])
    late = _db(y[start + 4 * SR // 10 : start + 4 * SR // 10 + window])
    assert early - late == pytest.approx(18.0, abs=3.0)
    assert late > -120.0


def test_room_impulse_response_has_unit_energy_and_its_length():
    ir = augment.room_impulse_response(np.random.default_rng(0), 0.5, 0.01, SR)
    assert len(ir) == int(0.01 * SR) + int(0.5 * SR)
    assert np.sum(ir**2) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- gain


def test_gain_scales_and_a_peak_above_one_is_scaled_down_not_clipped():
    config = dataclasses.replace(NONE, gain_probability=1.0, gain_db=(-6.0, -6.0))
    x = _noise(0.5, level=0.1)
    y = augment.augment(x, np.random.default_rng(0), config)
    np.testing.assert_allclose(y, x * 10 ** (-6 / 20), rtol=1e-6)
    loud = 0.9 * x / np.abs(x).max()
    y = augment.augment(loud, np.random.default_rng(0), dataclasses.replace(config, gain_db=(6, 6)))
    assert np.abs(y).max() == pytest.approx(1.0)
    np.testing.assert_allclose(y, loud / np.abs(loud).max(), rtol=1e-5, atol=1e-7)
