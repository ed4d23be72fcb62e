"""jdrum.datasets.synth: plans, determinism, levels and the exactness of the beat truth."""

import collections
import dataclasses
import functools
import itertools

import numpy as np
from absl.testing import absltest, parameterized

from jdrum.datasets import soundfont, synth, synth_sounds

_DEFAULT = synth.SynthConfig()
# Short songs at a low rate keep the rendering tests fast; the maths is rate independent.
_SHORT = synth.SynthConfig(sample_rate=22_050, min_seconds=10.0, max_seconds=14.0)
_TINY = synth.SynthConfig(min_seconds=6.0, max_seconds=9.0)
_SEEDS = range(200)


@functools.cache
def _plans(config: synth.SynthConfig = _DEFAULT) -> tuple[synth.SongPlan, ...]:
    return tuple(synth.plan_song(seed, config) for seed in _SEEDS)


def _first_seed(predicate) -> int:
    return next(p.seed for p in _plans(_SHORT) if predicate(p))


@functools.cache
def _song(seed: int) -> synth.Song:
    return synth.make_song(seed, _SHORT)


# One steady song per style, plus one of each kind of change (a ramped tempo change if any).
_CASES = [(style, _first_seed(lambda p, s=style: p.styles == {s})) for style in synth.STYLES]
_CASES += [
    ("tempo", _first_seed(lambda p: p.change == "tempo" and p.sections[1].ramp_bars > 0)),
    ("groove", _first_seed(lambda p: p.change == "groove")),
]


def _spectral_flux(x: np.ndarray, hop: int = 256, n_fft: int = 1024) -> np.ndarray:
    """Onset strength per hop: summed rise of the log magnitude spectrum."""
    frames = np.arange(n_fft)[None] + hop * np.arange((len(x) - n_fft) // hop + 1)[:, None]
    log_mag = np.log1p(100 * np.abs(np.fft.rfft(x[frames] * np.hanning(n_fft), axis=1)))
    return np.concatenate([[0.0], np.maximum(0.0, np.diff(log_mag, axis=0)).sum(axis=1)])


def _flux_at(flux: np.ndarray, times: np.ndarray, sr: int, hop: int = 256, n_fft: int = 1024):
    """Mean of the strongest flux in the three frames from each time (absorbs the jitter)."""
    frame = np.clip(np.round((times * sr - n_fft / 2) / hop).astype(int), 0, len(flux) - 3)
    return np.max(np.stack([flux[frame + k] for k in range(3)]), axis=0).mean()


class StylesTest(absltest.TestCase):
    def test_meters(self):
        meters = collections.Counter(synth._STYLES[s].meter for s in synth.STYLES)
        self.assertGreaterEqual(len(synth.STYLES), 7)
        self.assertGreaterEqual(meters[3], 2)
        self.assertEqual(meters[3] + meters[4], len(synth.STYLES))

    def test_patterns_fill_one_bar(self):
        for name, style in synth._STYLES.items():
            steps = style.meter * style.steps_per_beat
            for pattern in [style.bass, style.comp, *style.drums.values()]:
                self.assertLen(pattern, steps, msg=name)
            self.assertTrue(set(style.bass) <= set("RTFOSB."), msg=name)
            self.assertTrue(set("".join(style.drums.values())) <= set("Xxo."), msg=name)
            self.assertLessEqual(set(style.drums), set(synth_sounds.KIT_GAIN), msg=name)


class PlanTest(absltest.TestCase):
    def test_deterministic_and_seed_dependent(self):
        self.assertEqual(synth.plan_song(5), synth.plan_song(5))
        self.assertNotEqual(synth.plan_song(5), synth.plan_song(6))
        self.assertEqual(synth.plan_song(5).song_id, "synth-5")
        self.assertEqual(synth.plan_song(5, song_id="x").song_id, "x")

    def test_variety_over_seeds(self):
        plans = _plans()
        self.assertEqual(set().union(*(p.styles for p in plans)), set(synth.STYLES))
        self.assertEqual({p.meter for p in plans}, {3, 4})
        self.assertEqual({p.mode for p in plans}, {"major", "minor"})
        changes = collections.Counter(p.change for p in plans)
        self.assertGreater(changes["tempo"], 0)
        self.assertGreater(changes["groove"], 0)
        self.assertBetween((changes["tempo"] + changes["groove"]) / len(plans), 0.1, 0.3)
        self.assertGreater(len({p.sections[0].bpm for p in plans}), 190)

    def test_sections_follow_the_rules(self):
        for config in (_DEFAULT, _SHORT, _TINY):
            for plan in _plans(config):
                sections = plan.sections
                self.assertEqual(sections[0].start_bar, 0)
                for before, after in itertools.pairwise(sections):
                    self.assertEqual(after.start_bar, before.start_bar + before.num_bars)
                for section in sections:
                    self.assertGreaterEqual(section.num_bars, 1)
                    self.assertEqual(synth._STYLES[section.style].meter, plan.meter)
                    self.assertBetween(section.bpm, config.min_bpm, config.max_bpm)
                self.assertBetween(plan.duration_s, config.min_seconds, config.max_seconds)
                self.assertBetween(plan.lead_in_s, 0.0, 0.5)
                self.assertLen(sections, 1 if plan.change is None else 2)
                if plan.change == "tempo":
                    first, second = sections
                    self.assertEqual(first.style, second.style)
                    self.assertGreaterEqual(abs(second.bpm / first.bpm - 1), 0.1 - 1e-12)
                if plan.change == "groove":
                    first, second = sections
                    self.assertNotEqual(first.style, second.style)
                    self.assertEqual((first.bpm, second.ramp_bars), (second.bpm, 0))


class RenderTest(parameterized.TestCase):
    def test_deterministic_and_seed_dependent(self):
        a, b = synth.make_song(3, _SHORT), synth.make_song(3, _SHORT)
        c = synth.make_song(4, _SHORT)
        np.testing.assert_array_equal(a.beats, b.beats)
        for name in a.stems:
            np.testing.assert_array_equal(a.stems[name], b.stems[name])
        self.assertFalse(np.array_equal(a.drums[: len(c.drums)], c.drums[: len(a.drums)]))

    @parameterized.named_parameters(*_CASES)
    def test_stems_and_level(self, seed):
        song = _song(seed)
        self.assertEqual(list(song.stems), ["drums", "bass", "chords", "lead"])
        length = int(np.ceil(song.plan.duration_s * _SHORT.sample_rate))
        for name, x in song.stems.items():
            self.assertEqual((x.dtype, x.shape), (np.float32, (length,)), msg=name)
            self.assertTrue(np.all(np.isfinite(x)), msg=name)
            self.assertLessEqual(np.abs(x).max(), 1.0, msg=name)
            self.assertGreater(np.sqrt(np.mean(x**2)), 0.005, msg=name)
        self.assertEqual(song.mix.dtype, np.float32)
        self.assertAlmostEqual(float(np.abs(song.mix).max()), _SHORT.peak, delta=1e-6)
        np.testing.assert_array_equal(song.mix, song.drums + song.drumless)
        np.testing.assert_array_equal(
            song.drumless, song.stems["bass"] + song.stems["chords"] + song.stems["lead"]
        )

    @parameterized.named_parameters(*_CASES)
    def test_beats_are_exact(self, seed):
        song, plan = _song(seed), _song(seed).plan
        times, positions = song.beats[:, 0], song.beats[:, 1]
        self.assertEqual(song.beats.dtype, np.float64)
        self.assertLen(times, plan.num_bars * plan.meter)
        self.assertEqual(song.bpm.shape, times.shape)
        self.assertEqual(times[0], plan.lead_in_s)
        self.assertTrue(np.all(np.diff(times) > 0))
        np.testing.assert_array_equal(positions, np.arange(len(times)) % plan.meter + 1)
        np.testing.assert_allclose(np.diff(times), 60.0 / song.bpm[:-1], rtol=0, atol=1e-9)
        self.assertAlmostEqual(times[-1] + 60.0 / song.bpm[-1], plan.duration_s, delta=1e-9)
        for section in plan.sections:
            first = (section.start_bar + section.ramp_bars) * plan.meter
            steady = song.bpm[first : (section.start_bar + section.num_bars) * plan.meter]
            np.testing.assert_array_equal(steady, section.bpm)

    def test_tempo_ramp_moves_monotonically(self):
        song = _song(dict(_CASES)["tempo"])
        first, second = song.plan.sections
        ramp = song.bpm[
            second.start_bar * song.plan.meter : (second.start_bar + second.ramp_bars)
            * song.plan.meter
        ]
        self.assertNotEmpty(ramp)
        steps = np.diff(np.concatenate([[first.bpm], ramp, [second.bpm]]))
        self.assertTrue(np.all(np.sign(steps) == np.sign(second.bpm - first.bpm)))

    def test_a_changed_plan_renders_its_change(self):
        plan = _song(dict(_CASES)["rock"]).plan
        faster = dataclasses.replace(
            plan, sections=(dataclasses.replace(plan.sections[0], bpm=plan.sections[0].bpm * 1.5),)
        )
        song = synth.render_song(faster, _SHORT)
        np.testing.assert_allclose(song.bpm, plan.sections[0].bpm * 1.5)
        self.assertLess(len(song.mix), len(_song(plan.seed).mix))

    @parameterized.named_parameters(*_CASES)
    def test_lead_in_is_silent(self, seed):
        song = _song(seed)
        # Humanised onsets move at most 2.5 * 4 ms ahead of the nominal time.
        silent = int((song.plan.lead_in_s - 0.011) * _SHORT.sample_rate)
        # The room reverb is an FFT convolution: its rounding leaves ~1e-16, nothing audible.
        self.assertLess(np.abs(song.mix[: max(0, silent)]).max(initial=0.0), 1e-9)

    @parameterized.named_parameters(*_CASES)
    def test_onsets_fall_on_beats(self, seed):
        song, sr = _song(seed), _SHORT.sample_rate
        times = song.beats[:, 0]
        random_times = np.random.default_rng(0).uniform(times[0], times[-1], size=500)
        drums, drumless = _spectral_flux(song.drums), _spectral_flux(song.drumless)
        drum_ratio = _flux_at(drums, times, sr) / _flux_at(drums, random_times, sr)
        drumless_ratio = _flux_at(drumless, times, sr) / _flux_at(drumless, random_times, sr)
        # Over seeds 0..199 the lowest ratios are about 1.4 (drums) and 1.26 (drumless).
        self.assertGreater(drum_ratio, 1.25)
        self.assertGreater(drumless_ratio, 1.1)
        # The drums carry the rhythm of the mix: their onsets are the stronger ones.
        self.assertGreater(drums.mean(), drumless.mean())

    def test_drum_notes_are_the_rendered_hits(self):
        seed = _CASES[0][1]
        song, sr = _song(seed), _SHORT.sample_rate
        notes = song.drum_notes
        hits = synth.drum_hits(song.plan)  # nominal times, before humanising
        self.assertLen(notes, len(hits))
        self.assertTrue(np.all(np.diff(notes[:, 0]) >= 0))
        keys = {soundfont.DRUM_KEYS[name] for name, _, _ in hits}
        self.assertEqual(set(notes[:, 1].astype(int)), keys)
        self.assertTrue(np.all((notes[:, 2] >= 1) & (notes[:, 2] <= 127)))
        nominal = np.sort([t for _, t, _ in hits])
        np.testing.assert_allclose(notes[:, 0], nominal, atol=2.5 * 0.003 + 1 / sr)
        # Each onset is the sample where the renderer starts the hit.
        np.testing.assert_allclose(notes[:, 0] * sr, np.round(notes[:, 0] * sr), atol=1e-6)
        # The soundfont plays the same notes.
        config = dataclasses.replace(_SHORT, renderer="soundfont")
        np.testing.assert_array_equal(synth.render_song(song.plan, config).drum_notes, notes)

    @parameterized.named_parameters(*_CASES)
    def test_drumless_sounds_in_every_section(self, seed):
        song, sr = _song(seed), _SHORT.sample_rate
        for section in song.plan.sections:
            first = section.start_bar * song.plan.meter
            last = (section.start_bar + section.num_bars) * song.plan.meter - 1
            span = song.drumless[int(song.beats[first, 0] * sr) : int(song.beats[last, 0] * sr)]
            self.assertGreater(np.sqrt(np.mean(span**2)), 0.02, msg=section)


if __name__ == "__main__":
    absltest.main()
