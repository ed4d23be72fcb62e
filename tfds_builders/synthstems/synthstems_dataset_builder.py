"""synthstems: multitrack songs synthesised in NumPy, with exact beat and downbeat truth.

Needs no download: `jdrum.datasets.synth` renders every song from a seed, so the demo, the tests
and CI run on a fresh machine. Each song has a drum kit (kick, snare, hi-hats, toms, cymbals;
humanised, with fills) and three drumless instruments (bass, chords, lead) over a chord
progression, at 60-200 BPM in 3/4 or 4/4, in one of `jdrum.datasets.synth.STYLES`; about 20 %
change tempo or groove.

Build (array_record, no TensorFlow needed):

    python -m jdrum.build_dataset synthstems/tiny --data_dir data/tfds
    python -m jdrum.build_dataset synthstems/default --data_dir data/tfds --num_workers 8

`--num_workers N` renders and cuts N songs at a time in parallel processes (same records).

Configs: `tiny` (a few short songs, 2**17-sample clips, builds in seconds), `demo` (what
`make demo` trains on), `default` (hundreds of songs, the paper's 2**20-sample clips, 50 % hop)
and `eval`: 32 whole songs of 20-60 s for evaluation (`python -m jdrum.evaluate`), all in its
`test` split, from seeds that no other config uses (its songs are in no training set). They
cover every style and both meters, 9 of them change tempo or groove; consecutive 2**17-sample
clips without overlap, silent drums kept and no beat features, so `jdrum.data.songs`
reassembles each song whole (all but the last < 3 s). `eval_soundfont` holds the same 32 songs
(same seeds and settings: the same plans, notes and beats) with every part played by General
MIDI instruments of a soundfont instead of the NumPy synthesiser: drum kit, bass, chord and lead
programs drawn from each song's seed. Its inputs are timbres that no training config has, and
so are its drums for every config but `default` and `demo_mixed` (soundfont drums, never
soundfont drumless parts); its song ids are `synthstems-evalsf-NNNNN`. `eval_unseen_kits` holds
the same 32 songs again, NumPy drumless parts and soundfont drums from the two kits that no
training config draws (`jdrum.datasets.soundfont.HELD_OUT_KITS`: TR 808 and Brush; `default`
and `demo_mixed` draw from the other four, `TRAINING_KITS`): drums in timbres that training
never heard, e.g. for a drum transcriber. Its song ids are `synthstems-evalkit-NNNNN`.

`SynthstemsConfig.renderer` picks who plays the notes (`jdrum.datasets.synth.SynthConfig`):
"numpy" (the synthesised kit; `demo`, `tiny` and `eval`), "soundfont" (the drums of each song
from one of the drum kits of TimGM6mb.sf2 that `SynthstemsConfig.drum_kits` lists, which
`pretty_midi` ships, rendered by `tinysoundfont`; nothing downloaded) or "mixed" (per song,
about half each, drawn from the seed: `default`, and `demo_mixed`, which holds `demo`'s songs
and splits so). `demo` stays
NumPy-only: at the demo's budget its tiny models trained on the mixed renders followed the beat
less and droned (README, "Unseen timbres").

Every record also carries its drum notes (`drum_notes`: onset, General MIDI key, velocity;
`jdrum.datasets.records.DRUM_NOTES_DOC`), exactly as rendered: both renderers play the same
hits, at the same samples, so the notes are labels for a drum transcriber.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from jdrum import parallel
from jdrum.datasets import records, soundfont, synth


@dataclasses.dataclass(eq=False)
class SynthstemsConfig(tfds.core.BuilderConfig):
    """Song count and length, the synthesis seed and the clip settings."""

    num_songs: int = 400
    min_seconds: float = 60.0
    max_seconds: float = 180.0
    change_probability: float = 0.2  # songs with a tempo or groove change
    seed: int = 0  # song i is synthesised from seed * 1_000_003 + i
    clip: records.ClipConfig = records.ClipConfig(tracker="madmom")
    test_only: bool = False  # every song in `test` (an evaluation set), else the 80/10/10 hash
    id_prefix: str = "synthstems"
    renderer: str = "numpy"  # "numpy", "soundfont" (General MIDI) or "mixed"
    soundfont_parts: tuple[str, ...] = ("drums",)  # what a soundfont song takes from it
    # The kits a soundfont song draws its drums from: every training config leaves out
    # `soundfont.HELD_OUT_KITS` (eval_unseen_kits plays only those).
    drum_kits: tuple[int, ...] = soundfont.TRAINING_KITS

    @property
    def synth_config(self) -> synth.SynthConfig:
        return synth.SynthConfig(
            min_seconds=self.min_seconds,
            max_seconds=self.max_seconds,
            change_probability=self.change_probability,
            renderer=self.renderer,
            soundfont_parts=self.soundfont_parts,
            drum_kits=self.drum_kits,
        )

    def song_id(self, index: int) -> str:
        return f"{self.id_prefix}-{index:05d}"

    def plan(self, index: int) -> synth.SongPlan:
        """The plan of song `index` (cheap: no audio is rendered)."""
        seed = self.seed * 1_000_003 + index
        return synth.plan_song(seed, self.synth_config, self.song_id(index))


_DEMO = SynthstemsConfig(
    name="demo",
    description="160 songs of 12-20 s, 2**17-sample clips with 50 % overlap.",
    num_songs=160,
    min_seconds=12.0,
    max_seconds=20.0,
    clip=records.ClipConfig(clip_length=2**17, hop_length=2**16, tracker="madmom"),
)
_EVAL = SynthstemsConfig(
    name="eval",
    description="32 held-out whole songs of 20-60 s (test split only) for evaluation.",
    num_songs=32,
    min_seconds=20.0,
    max_seconds=60.0,
    change_probability=0.3,
    seed=1,
    clip=records.ClipConfig(
        clip_length=2**17, hop_length=2**17, drop_silent_drums=False, tracker="none"
    ),
    test_only=True,
    id_prefix="synthstems-eval",
)


class Builder(records.ParallelBuild, tfds.core.GeneratorBasedBuilder):
    """Paired drum / drumless clips of synthesised songs."""

    VERSION = tfds.core.Version("1.6.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "Beat features of the drumless clips from the madmom tracker (in JAX).",
        "1.2.0": "demo: 160 songs (was 40), enough for the tiny LMs to learn to follow the beat.",
        "1.3.0": records.RAW_BYTES_NOTE,
        "1.4.0": "Drier kicks and toms (decay 0.05-0.15 s and 0.1-0.2 s, were 0.2-0.4 and 0.25).",
        "1.5.0": "default only: about half its songs with soundfont drums (renderer mixed).",
        "1.6.0": "drum_notes: every clip's drum notes (onset, General MIDI key, velocity)."
        " default and demo_mixed draw soundfont drums from 4 kits, holding out TR 808 and Brush;"
        " eval_unseen_kits (new): eval's 32 songs with drums from those two kits only.",
    }
    BUILDER_CONFIGS = [
        SynthstemsConfig(
            name="default",
            description="400 songs of 1-3 minutes, 2**20-sample clips with 50 % overlap, about"
            " half with soundfont drums.",
            renderer="mixed",
        ),
        _DEMO,
        dataclasses.replace(
            _DEMO,
            name="demo_mixed",
            description="The songs and clips of `demo`, about half with soundfont drums.",
            renderer="mixed",
        ),
        SynthstemsConfig(
            name="tiny",
            description="16 songs of 5-7 s, 2**17-sample clips with 50 % overlap.",
            num_songs=16,
            min_seconds=5.0,
            max_seconds=7.0,
            clip=records.ClipConfig(clip_length=2**17, hop_length=2**16, tracker="madmom"),
        ),
        _EVAL,
        dataclasses.replace(
            _EVAL,
            name="eval_soundfont",
            description="The 32 songs of `eval`, every part from a General MIDI soundfont.",
            id_prefix="synthstems-evalsf",
            renderer="soundfont",
            soundfont_parts=synth.PARTS,
            drum_kits=tuple(soundfont.DRUM_KITS),  # every kit, as before 1.6.0
        ),
        dataclasses.replace(
            _EVAL,
            name="eval_unseen_kits",
            description="The 32 songs of `eval`, drums from the 2 soundfont kits no training"
            " config draws (TR 808, Brush).",
            id_prefix="synthstems-evalkit",
            renderer="soundfont",
            drum_kits=soundfont.HELD_OUT_KITS,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=records.features(self.builder_config.clip, drum_notes=True),
            homepage="https://arxiv.org/abs/2210.06007",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        config = self.builder_config
        by_split = {split: [] for split in (("test",) if config.test_only else records.SPLITS)}
        for index in range(config.num_songs):
            split = "test" if config.test_only else records.split_of(config.song_id(index))
            by_split[split].append(index)
        return {split: self._generate_examples(songs) for split, songs in by_split.items()}

    def _generate_examples(self, indices):
        config = self.builder_config
        configs = [config] * len(indices)
        for clips in parallel.process_map(
            song_records, configs, indices, num_workers=self.num_workers
        ):
            yield from clips


def song_records(config: SynthstemsConfig, index: int) -> list[tuple[str, dict]]:
    """The (key, record) clips of song `index` of `config`."""
    song = synth.render_song(config.plan(index), config.synth_config)
    return list(
        records.song_clips(
            song.plan.song_id,
            "synthstems",
            song.drums,
            song.drumless,
            config.clip,
            true_beats=song.beats,
            tempo=song.bpm,
            drum_notes=song.drum_notes,
        )
    )
