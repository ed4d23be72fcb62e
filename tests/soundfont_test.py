"""jdrum.datasets.soundfont and synth's renderers: General MIDI drums on the planned hits,
bit-identical renders, the NumPy renderer unchanged and "mixed" picking both."""

import dataclasses
import functools

import librosa
import mir_eval
import numpy as np
import tinysoundfont
from absl.testing import absltest, parameterized

from jdrum.datasets import soundfont, synth, synth_sounds

_NUMPY = synth.SynthConfig(min_seconds=6.0, max_seconds=9.0)
_SOUNDFONT = dataclasses.replace(_NUMPY, renderer="soundfont")
_WHOLE = dataclasses.replace(_SOUNDFONT, soundfont_parts=synth.PARTS)
_MIXED = dataclasses.replace(_NUMPY, renderer="mixed")
SR = _NUMPY.sample_rate

# Each stem's energy and its sum against a sine over the song, of `render_song(plan_song(7,
# SynthConfig(min_seconds=5, max_seconds=8)))` before the soundfont renderer existed.
_NUMPY_SEED_7 = {
    "drums": (1994.2211018110772, -8.689837178627425),
    "bass": (421.93281603442006, 1.0278026395705875),
    "chords": (118.34384322673174, -0.16401650713645344),
    "lead": (115.70820324813864, -0.12773646133464028),
}


def _first_seed(config: synth.SynthConfig, predicate) -> int:
    return next(s for s in range(1000) if predicate(synth.plan_song(s, config)))


def _kit_seed(kit: int) -> int:
    return _first_seed(_SOUNDFONT, lambda p: synth.song_instruments(p, _SOUNDFONT).kit == kit)


@functools.cache
def _song(seed: int, config: synth.SynthConfig) -> synth.Song:
    return synth.make_song(seed, config)


def _shape(x: np.ndarray, y: np.ndarray) -> float:
    """Cosine similarity: 1 when one stem is the other times a positive gain."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))


class SoundfontTest(parameterized.TestCase):
    def test_the_soundfont_has_the_kits_and_programs(self):
        synth_ = tinysoundfont.Synth()
        sfid = synth_.sfload(str(soundfont.soundfont_path()))
        for preset, name in soundfont.DRUM_KITS.items():
            self.assertEqual(synth_.sfpreset_name(sfid, soundfont.DRUM_BANK, preset), name)
        programs = {**soundfont.BASS_PROGRAMS, **soundfont.CHORD_PROGRAMS}
        programs |= {**soundfont.PAD_PROGRAMS, **soundfont.LEAD_PROGRAMS}
        for program in programs:
            self.assertIsNotNone(synth_.sfpreset_name(sfid, 0, program), msg=program)
        self.assertIsNone(synth_.sfpreset_name(sfid, soundfont.DRUM_BANK, 1))
        self.assertEqual(set(soundfont.DRUM_KEYS), set(synth_sounds.KIT_GAIN))

    def test_every_drum_sounds_at_its_sample(self):
        for name in soundfont.DRUM_KEYS:
            x = soundfont.play_drums(0, [name], [1000], [1.0], SR // 2, SR)
            self.assertEqual((x.dtype, x.shape), (np.float32, (SR // 2,)))
            self.assertEqual(np.abs(x[:1000]).max(), 0.0, msg=name)
            first = 1000 + np.flatnonzero(np.abs(x[1000:]) > 1e-3)[0]
            self.assertLess(first - 1000, 0.002 * SR, msg=name)  # within 2 ms
            self.assertGreater(np.abs(x).max(), 0.05, msg=name)

    @parameterized.parameters(*soundfont.DRUM_KITS)
    def test_drums_fall_on_the_planned_hits(self, kit):
        song = _song(_kit_seed(kit), _SOUNDFONT)
        planned = np.array(sorted({round(t, 4) for _, t, _ in synth.drum_hits(song.plan)}))
        onsets = librosa.onset.onset_detect(y=song.drums, sr=SR, units="time", hop_length=256)
        self.assertGreater(np.sqrt(np.mean(song.drums**2)), 0.01)
        _, precision, recall = mir_eval.onset.f_measure(planned, onsets, window=0.03)
        # Every detected onset lies within 30 ms of a planned hit; close hits of fast grooves
        # merge into one onset (the lowest recall over 4 songs per kit was 0.6).
        self.assertGreaterEqual(precision, 0.95)
        self.assertGreaterEqual(recall, 0.5)
        _, late, _ = mir_eval.onset.f_measure(planned + 0.05, onsets, window=0.03)
        self.assertLess(late, 0.2)  # the check notices drums 50 ms off the plan

    def test_soundfont_drums_differ_from_numpy_and_keep_the_beats(self):
        seed = _kit_seed(0)
        gm, numpy_ = _song(seed, _SOUNDFONT), _song(seed, _NUMPY)
        np.testing.assert_array_equal(gm.beats, numpy_.beats)
        np.testing.assert_array_equal(gm.bpm, numpy_.bpm)
        self.assertLess(_shape(gm.drums, numpy_.drums), 0.5)
        for name in ("bass", "chords", "lead"):  # NumPy still, up to the mix's gain
            self.assertGreater(_shape(gm.stems[name], numpy_.stems[name]), 1 - 1e-6, msg=name)

    def test_same_seed_renders_bit_identical_audio(self):
        seed = _kit_seed(25)
        first, second = synth.make_song(seed, _WHOLE), synth.make_song(seed, _WHOLE)
        for name in synth.PARTS:
            np.testing.assert_array_equal(first.stems[name], second.stems[name])
        other = _song(_kit_seed(24), _SOUNDFONT)
        n = min(len(first.drums), len(other.drums))
        self.assertFalse(np.array_equal(first.drums[:n], other.drums[:n]))

    def test_whole_song_from_the_soundfont(self):
        seed = _first_seed(_WHOLE, lambda p: p.lead_in_s > 0.1)
        song, numpy_ = _song(seed, _WHOLE), _song(seed, _NUMPY)
        silent = int((song.plan.lead_in_s - 0.011) * SR)  # onsets move at most 10 ms early
        for name in synth.PARTS:
            x = song.stems[name]
            self.assertEqual((x.dtype, x.shape), (np.float32, numpy_.stems[name].shape))
            self.assertTrue(np.all(np.isfinite(x)), msg=name)
            self.assertLess(np.abs(x[: max(0, silent)]).max(initial=0.0), 1e-9, msg=name)
            self.assertLess(_shape(x, numpy_.stems[name]), 0.9, msg=name)
        self.assertAlmostEqual(float(np.abs(song.mix).max()), _NUMPY.peak, delta=1e-6)

    def test_numpy_renderer_is_unchanged(self):
        config = synth.SynthConfig(min_seconds=5.0, max_seconds=8.0)
        song = synth.make_song(7, config)
        for name, (energy, moment) in _NUMPY_SEED_7.items():
            x = song.stems[name].astype(np.float64)
            sine = np.sin(2 * np.pi * 97 * np.arange(len(x)) / len(x))
            np.testing.assert_allclose(np.sum(x**2), energy, rtol=1e-6, err_msg=name)
            np.testing.assert_allclose(x @ sine, moment, rtol=1e-5, atol=1e-6, err_msg=name)
        explicit = dataclasses.replace(config, renderer="numpy", soundfont_parts=synth.PARTS)
        again = synth.make_song(7, explicit)
        for name in synth.PARTS:
            np.testing.assert_array_equal(again.stems[name], song.stems[name])

    def test_mixed_picks_both_renderers_by_seed(self):
        picks = [synth.song_renderer(synth.plan_song(s, _MIXED), _MIXED) for s in range(100)]
        self.assertEqual(set(picks), {"numpy", "soundfont"})
        self.assertBetween(picks.count("soundfont"), 35, 65)
        for renderer, config in (("numpy", _NUMPY), ("soundfont", _SOUNDFONT)):
            seed = picks.index(renderer)
            mixed = synth.make_song(seed, _MIXED)
            np.testing.assert_array_equal(mixed.drums, _song(seed, config).drums)

    def test_songs_draw_their_kit_from_the_configs_kits(self):
        for seed in range(20):
            rng = lambda seed=seed: np.random.default_rng([seed, 8])
            # The default, every kit in order, draws as before the kits became a setting.
            self.assertEqual(soundfont.choose(rng()), soundfont.choose(rng(), soundfont.DRUM_KITS))
            held_out = soundfont.choose(rng(), soundfont.HELD_OUT_KITS)
            self.assertIn(held_out.kit, soundfont.HELD_OUT_KITS)
            others = dataclasses.replace(held_out, kit=soundfont.choose(rng()).kit)
            self.assertEqual(others, soundfont.choose(rng()))  # the programs do not move
        config = dataclasses.replace(_SOUNDFONT, drum_kits=(25,))
        plans = [synth.plan_song(seed, config) for seed in range(5)]
        self.assertEqual({synth.song_instruments(p, config).kit for p in plans}, {25})
        seed = _kit_seed(25)  # a song that draws TR 808 from every kit plays the same drums
        song = synth.render_song(synth.plan_song(seed, config), config)
        np.testing.assert_array_equal(song.drums, _song(seed, _SOUNDFONT).drums)

    def test_config_rejects_unknown_renderers_and_parts(self):
        with self.assertRaisesRegex(ValueError, "renderer"):
            synth.SynthConfig(renderer="fluidsynth")
        with self.assertRaisesRegex(ValueError, "soundfont_parts"):
            synth.SynthConfig(soundfont_parts=("drums", "piano"))
        for kits in ((), (0, 1)):
            with self.assertRaisesRegex(ValueError, "drum_kits"):
                synth.SynthConfig(drum_kits=kits)


if __name__ == "__main__":
    absltest.main()
