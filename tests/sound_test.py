"""jdrum.sound: each measure checked on signals whose answer is known (identical, shifted,
stationary), the instrument check before it is trusted on drums."""

import jax.numpy as jnp
import numpy as np
import pytest

from jdrum import audio, losses, sound

SR = audio.SAMPLE_RATE


def _clicks(seconds: float = 6.0, period: float = 0.5, offset: float = 0.25) -> np.ndarray:
    """Decaying 2 kHz blips every `period` s from `offset`: a stand-in for drum hits."""
    x = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.03 * SR)) / SR
    blip = (np.sin(2 * np.pi * 2000.0 * t) * np.exp(-t / 0.005)).astype(np.float32)
    for time_s in np.arange(offset, seconds - 0.1, period):
        start = int(round(time_s * SR))
        x[start : start + len(t)] += 0.8 * blip
    return x


def _sine(hz: float, seconds: float, amplitude: float) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)).astype(
        np.float32
    )


def test_paired_measures_are_zero_for_the_same_stem_and_grow_with_damage():
    x = _clicks()
    same = sound.stft_distance(x, x)
    assert same == {"log_l1": 0.0, "spectral_convergence": 0.0, "stft_distance": 0.0}
    noise = np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    slightly = sound.stft_distance(x + 0.001 * noise, x)["stft_distance"]
    badly = sound.stft_distance(x + 0.1 * noise, x)["stft_distance"]
    assert 0.0 < slightly < badly


def test_onset_f1_counts_hits_within_50_ms():
    x = _clicks()
    assert sound.onset_f1(x, x) == 1.0
    assert sound.onset_f1(_clicks(offset=0.27), x) == 1.0  # 20 ms late: still a hit
    assert sound.onset_f1(_clicks(offset=0.4), x) == 0.0  # 150 ms late: every hit missed
    assert sound.onset_f1(np.zeros_like(x), x) == 0.0


def _kicks(seconds: float = 6.0) -> np.ndarray:
    """Decaying 55 Hz thumps every 0.5 s: low energy that does not stay."""
    x = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.3 * SR)) / SR
    kick = (np.sin(2 * np.pi * 55.0 * t) * np.exp(-t / 0.05)).astype(np.float32)
    for time_s in np.arange(0.25, seconds - 0.4, 0.5):
        start = int(round(time_s * SR))
        x[start : start + len(t)] += 0.8 * kick
    return x


def test_the_drone_is_low_power_that_stays_not_hits():
    hits = _clicks() + _kicks()
    drone = _sine(60.0, 6.0, 0.01)  # -40 dBFS
    assert sound.drone_db(hits) < -40.0
    assert sound.drone_db(drone) > -1.0  # all of its power stays
    assert sound.drone_db(hits + drone) > sound.drone_db(hits) + 10.0
    assert sound.drone_db(hits + _sine(1000.0, 6.0, 0.01)) < -40.0  # a high line is not low
    assert sound.drone_db(np.zeros(SR * 2, np.float32)) == sound.SILENT_DB
    assert sound.drone_db(hits[: SR // 2]) == sound.SILENT_DB  # shorter than a second


def test_sound_metrics_of_a_stem_against_its_real_drums():
    x = _clicks()
    values = sound.sound_metrics(x, x)
    assert tuple(values) == sound.SOUND_NAMES
    assert values["stft_distance"] == 0.0 and values["onset_f1"] == 1.0
    assert values["drone_excess_db"] == 0.0
    with pytest.raises(ValueError, match="mono"):
        sound.sound_metrics(np.stack([x, x]), x)


def test_the_drone_excess_is_the_take_over_its_real_drums():
    real = _clicks() + _kicks()
    take = real + _sine(60.0, 6.0, 0.01)  # the same hits over a -40 dBFS hum
    excess = sound.sound_metrics(take, real)["drone_excess_db"]
    assert excess == pytest.approx(sound.drone_db(take) - sound.drone_db(real))
    assert excess > 10.0
    # A take without the hum's power: its excess is negative, however droning the real drums.
    assert sound.sound_metrics(real, take)["drone_excess_db"] < -10.0


def test_the_stft_loss_is_the_paired_measure():
    """`losses.stft_loss`, what the tiny vocoders train on, is `stft_distance` made
    differentiable: the same number wherever the reference has no digital silence (below
    1e-5 the loss's 1e-9 under the root lifts the floor)."""
    rng = np.random.default_rng(0)
    x = _clicks() + 1e-3 * rng.standard_normal(6 * SR).astype(np.float32)
    assert float(losses.stft_loss(jnp.asarray(x[None]), jnp.asarray(x[None]))) == 0.0
    for level in (0.001, 0.01, 0.1):
        y = x + level * rng.standard_normal(len(x)).astype(np.float32)
        loss = float(losses.stft_loss(jnp.asarray(y[None]), jnp.asarray(x[None])))
        assert loss == pytest.approx(sound.stft_distance(y, x)["stft_distance"], rel=1e-2)
