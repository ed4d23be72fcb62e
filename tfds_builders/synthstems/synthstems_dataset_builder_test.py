"""synthstems: builds `tiny`, reads it back through tfds.data_source and grain, checks it."""

import collections
import dataclasses
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jdrum import audio, data
from jdrum.datasets import records, soundfont, synth

SR = audio.SAMPLE_RATE


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny config built twice into two folders, in one process and in two."""
    dirs = []
    for name, num_workers in (("a", 1), ("b", 2)):
        data_dir = tmp_path_factory.mktemp(name)
        data.builder("synthstems/tiny", data_dir, num_workers=num_workers).download_and_prepare()
        dirs.append(data_dir)
    return dirs


def _files(data_dir: pathlib.Path) -> dict[str, bytes]:
    root = data_dir / "synthstems" / "tiny"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_two_builds_are_byte_identical(built):
    first, second = (_files(d) for d in built)
    assert any(name.endswith(".array_record-00000-of-00001") for name in first)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


@pytest.fixture(scope="module")
def splits(built):
    return {split: data.data_source("synthstems/tiny", split, built[0]) for split in records.SPLITS}


def test_records_have_the_clip_schema(splits):
    config = data.builder("synthstems/tiny", "unused").builder_config.clip
    frames = config.beat_frames
    for split, source in splits.items():
        assert len(source) > 0, split
        record = source[0]
        assert record["drums"].shape == (2**17,) and record["drums"].dtype == np.int16
        assert record["drumless"].shape == (2**17,) and record["drumless"].dtype == np.int16
        assert record["beat_embedding"].shape == (frames, 50)
        assert record["beat_embedding"].dtype == np.float16
        assert record["beat_activation"].shape == (frames, 3)
        assert record["beats"].shape[1] == 2
        assert record["source"] == b"synthstems"
        assert frames == 298  # ceil(2**17 / 441)
        # Beat features of the drumless clip from the madmom tracker.
        np.testing.assert_allclose(record["beat_activation"].sum(axis=-1), 1.0, atol=1e-5)
        assert np.abs(record["beat_embedding"]).max() > 0.1


def test_splits_are_by_recording_and_clips_match_the_songs(splits):
    builder_config = data.builder("synthstems/tiny", "unused").builder_config
    songs_by_split = collections.defaultdict(set)
    for split, source in splits.items():
        for i in range(len(source)):
            record = source[i]
            song_id = record["song_id"].decode()
            songs_by_split[split].add(song_id)
            assert records.split_of(song_id) == split
            # The drum and drumless clips are the song's stems at the clip's start; their sum
            # is the full mix (to int16 rounding).
            index = int(song_id.rsplit("-", 1)[1])
            song = synth.render_song(builder_config.plan(index), builder_config.synth_config)
            start = int(record["start_sample"])
            window = slice(start, start + 2**17)
            np.testing.assert_array_equal(record["drums"], audio.to_pcm16(song.drums[window]))
            mix = audio.from_pcm16(record["drums"]) + audio.from_pcm16(record["drumless"])
            np.testing.assert_allclose(mix, song.mix[window], atol=1.0 / 32768)
            # Beat truth is relative to the clip and lies inside it.
            beats = record["true_beats"]
            assert np.all((beats[:, 0] >= 0) & (beats[:, 0] < 2**17 / SR))
            assert set(np.unique(beats[:, 1])) <= set(range(1, song.plan.meter + 1))
            assert 60.0 <= record["tempo"] <= 200.0
            # The drum notes are the song's, those starting in the clip, relative to it.
            notes = song.drum_notes[np.round(song.drum_notes[:, 0] * SR) - start >= 0]
            notes = notes[np.round(notes[:, 0] * SR) < start + 2**17]
            np.testing.assert_allclose(record["drum_notes"], notes - [start / SR, 0, 0], atol=1e-4)
    all_songs = [s for songs in songs_by_split.values() for s in songs]
    assert len(all_songs) == len(set(all_songs))  # no song in two splits


def test_grain_reads_batches(splits):
    loader = data.clip_dataset(splits["train"], batch_size=4, seed=1)
    batch = next(iter(loader))
    assert batch["drums"].shape == (4, 2**17) and batch["drums"].dtype == np.float32
    assert np.abs(batch["drums"]).max() <= 1.0
    again = next(iter(data.clip_dataset(splits["train"], batch_size=4, seed=1)))
    np.testing.assert_array_equal(batch["start_sample"], again["start_sample"])


def test_default_config_covers_styles_meters_and_changes():
    config = data.builder("synthstems/default", "unused").builder_config
    plans = [config.plan(i) for i in range(config.num_songs)]
    styles = {style for plan in plans for style in plan.styles}
    assert len(styles) >= 6 and styles == set(synth.STYLES)
    assert {plan.meter for plan in plans} == {3, 4}
    changes = collections.Counter(plan.change for plan in plans)
    assert changes["tempo"] > 0 and changes["groove"] > 0
    assert 0.1 <= (changes["tempo"] + changes["groove"]) / len(plans) <= 0.3


def test_eval_config_is_a_held_out_set_of_whole_songs():
    config = data.builder("synthstems/eval", "unused").builder_config
    plans = [config.plan(i) for i in range(config.num_songs)]
    assert len(plans) >= 24 and all(20.0 <= plan.duration_s <= 60.0 for plan in plans)
    assert {style for plan in plans for style in plan.styles} == set(synth.STYLES)
    assert {plan.meter for plan in plans} == {3, 4}
    assert sum(plan.change is not None for plan in plans) >= 0.2 * len(plans)
    # The demo's subset (the 8 shortest songs) has both meters and a tempo change.
    shortest = sorted(plans, key=lambda plan: plan.duration_s)[:8]
    assert {plan.meter for plan in shortest} == {3, 4}
    assert "tempo" in {plan.change for plan in shortest}
    # Seeds no training config uses, so no training split holds these songs.
    seeds = {plan.seed for plan in plans}
    for name in ("default", "demo", "tiny"):
        other = data.builder(f"synthstems/{name}", "unused").builder_config
        assert seeds.isdisjoint(other.plan(i).seed for i in range(other.num_songs))
    # Every song in `test`; consecutive clips with silent drums kept, so songs reassemble.
    assert config.test_only and config.clip.hop_length == config.clip.clip_length
    assert not config.clip.drop_silent_drums
    assert [config.song_id(i) for i in range(3)] == [f"synthstems-eval-0000{i}" for i in range(3)]


def test_eval_songs_reassemble_whole_from_their_clips(tmp_path):
    small = dict(name="eval_small", num_songs=2, min_seconds=4, max_seconds=6)
    config = dataclasses.replace(data.builder("synthstems/eval", "unused").builder_config, **small)
    builder = tfds.builder_cls("synthstems")(
        config=config, data_dir=tmp_path, file_format="array_record"
    )
    builder.download_and_prepare()
    assert list(builder.info.splits) == ["test"]
    songs = data.songs(builder.as_data_source(split="test"))
    config = builder.builder_config
    assert [song.song_id for song in songs] == [config.song_id(0), config.song_id(1)]
    for index, song in enumerate(songs):
        truth = synth.render_song(config.plan(index), config.synth_config)
        length = len(truth.drums) // 2**17 * 2**17  # the whole clips
        assert len(song.drums) == length
        np.testing.assert_array_equal(
            audio.to_pcm16(song.drums), audio.to_pcm16(truth.drums[:length])
        )
        np.testing.assert_allclose(song.drums + song.drumless, truth.mix[:length], atol=1.0 / 16384)
        inside = truth.beats[np.round(truth.beats[:, 0] * SR) < length]
        np.testing.assert_allclose(song.true_beats, inside, atol=1e-4)


def test_eval_soundfont_is_eval_played_by_the_soundfont():
    evaluation = data.builder("synthstems/eval", "unused").builder_config
    config = data.builder("synthstems/eval_soundfont", "unused").builder_config
    assert (evaluation.renderer, config.renderer) == ("numpy", "soundfont")
    assert config.song_id(13) == "synthstems-evalsf-00013"
    assert config.soundfont_parts == ("drums", "bass", "chords", "lead")
    own = {"name", "description", "id_prefix", "renderer", "soundfont_parts", "drum_kits"}
    for field in dataclasses.fields(config):
        if field.name not in own:
            assert getattr(config, field.name) == getattr(evaluation, field.name), field.name
    for index in range(config.num_songs):  # the same songs: plans equal but for their ids
        plan = dataclasses.replace(config.plan(index), song_id=evaluation.song_id(index))
        assert plan == evaluation.plan(index)
    assert config.drum_kits == tuple(soundfont.DRUM_KITS)  # every kit, as before 1.6.0
    for name in ("demo", "tiny", "eval"):
        builder = data.builder(f"synthstems/{name}", "unused")
        assert (builder.builder_config.renderer, str(builder.version)) == ("numpy", "1.6.0")
    builder = data.builder("synthstems/default", "unused")
    assert (builder.builder_config.renderer, str(builder.version)) == ("mixed", "1.6.0")


def test_eval_soundfont_builds_with_the_beats_of_eval(tmp_path):
    small = dict(num_songs=2, min_seconds=4, max_seconds=6)
    configs = {
        name: dataclasses.replace(
            data.builder(f"synthstems/{name}", "unused").builder_config,
            name=f"{name}_small",
            **small,
        )
        for name in ("eval", "eval_soundfont")
    }
    builder = tfds.builder_cls("synthstems")(
        config=configs["eval_soundfont"], data_dir=tmp_path, file_format="array_record"
    )
    builder.download_and_prepare()
    songs = data.songs(builder.as_data_source(split="test"))
    assert [song.song_id for song in songs] == [
        "synthstems-evalsf-00000",
        "synthstems-evalsf-00001",
    ]
    for index, song in enumerate(songs):
        truth = synth.render_song(configs["eval"].plan(index), configs["eval"].synth_config)
        length = len(truth.drums) // 2**17 * 2**17
        assert len(song.drums) == length
        inside = truth.beats[np.round(truth.beats[:, 0] * SR) < length]
        np.testing.assert_allclose(song.true_beats, inside, atol=1e-4)
        # Whole songs get their drum notes back once each: eval's notes, for both renderers.
        notes = truth.drum_notes[np.round(truth.drum_notes[:, 0] * SR) < length]
        np.testing.assert_allclose(song.drum_notes, notes, atol=1e-4)
        # Every stem is the soundfont's, not the NumPy synthesiser's.
        for stem in ("drums", "drumless"):
            x = getattr(song, stem).astype(np.float64)
            numpy_x = getattr(truth, stem)[:length].astype(np.float64)
            cosine = x @ numpy_x / np.sqrt((x @ x) * (numpy_x @ numpy_x))
            assert np.sqrt(np.mean(x**2)) > 0.01 and abs(cosine) < 0.5, (stem, cosine)


# Song 0 of each config that the kit hold-out of 1.6.0 leaves alone, as rendered before it:
# drum and drumless energy (sum of squares) and length.
_UNCHANGED_SONG_0 = {
    "tiny": (2437.3699566241403, 1121.7819880208515, 246105),
    "demo": (7749.271303428492, 3622.060259522552, 814438),
    "eval": (24550.26943813398, 7267.460333632258, 2486646),
    "eval_soundfont": (27582.34869854724, 8282.686357231218, 2486646),
}


def test_renders_of_the_configs_without_held_out_kits_are_unchanged():
    for name, (drums, drumless, length) in _UNCHANGED_SONG_0.items():
        config = data.builder(f"synthstems/{name}", "unused").builder_config
        song = synth.render_song(config.plan(0), config.synth_config)
        assert len(song.drums) == length, name
        for x, energy in ((song.drums, drums), (song.drumless, drumless)):
            x = x.astype(np.float64)
            np.testing.assert_allclose(x @ x, energy, rtol=1e-6, err_msg=name)


def _kits(config) -> set[int]:
    """The soundfont kits the songs of a config play."""
    plans = [config.plan(i) for i in range(config.num_songs)]
    instruments = [synth.song_instruments(plan, config.synth_config) for plan in plans]
    return {x.kit for x in instruments if x is not None}


def test_training_configs_hold_out_the_kits_of_eval_unseen_kits():
    held_out = set(soundfont.HELD_OUT_KITS)
    assert len(held_out) == 2 and held_out < set(soundfont.DRUM_KITS)
    assert set(soundfont.TRAINING_KITS) == set(soundfont.DRUM_KITS) - held_out
    for name in ("default", "demo_mixed"):
        config = data.builder(f"synthstems/{name}", "unused").builder_config
        assert config.drum_kits == soundfont.TRAINING_KITS, name
        assert _kits(config) == set(soundfont.TRAINING_KITS), name  # all four, no other
    evaluation = data.builder("synthstems/eval", "unused").builder_config
    builder = data.builder("synthstems/eval_unseen_kits", "unused")
    config = builder.builder_config
    assert str(builder.version) == "1.6.0" and "eval_unseen_kits" in builder.RELEASE_NOTES["1.6.0"]
    assert (config.renderer, config.soundfont_parts) == ("soundfont", ("drums",))
    assert config.drum_kits == soundfont.HELD_OUT_KITS and _kits(config) == held_out
    assert config.song_id(13) == "synthstems-evalkit-00013"
    own = {"name", "description", "id_prefix", "renderer", "drum_kits"}
    for field in dataclasses.fields(config):
        if field.name not in own:
            assert getattr(config, field.name) == getattr(evaluation, field.name), field.name
    for index in range(config.num_songs):  # the same songs: plans equal but for their ids
        plan = dataclasses.replace(config.plan(index), song_id=evaluation.song_id(index))
        assert plan == evaluation.plan(index)


def test_eval_unseen_kits_builds_eval_with_held_out_drums(tmp_path):
    small = dict(num_songs=2, min_seconds=4, max_seconds=6)
    configs = {
        name: dataclasses.replace(
            data.builder(f"synthstems/{name}", "unused").builder_config,
            name=f"{name}_small",
            **small,
        )
        for name in ("eval", "eval_unseen_kits")
    }
    builder = tfds.builder_cls("synthstems")(
        config=configs["eval_unseen_kits"], data_dir=tmp_path, file_format="array_record"
    )
    builder.download_and_prepare()
    songs = data.songs(builder.as_data_source(split="test"))
    assert [song.song_id for song in songs] == [
        "synthstems-evalkit-00000",
        "synthstems-evalkit-00001",
    ]
    for index, song in enumerate(songs):
        truth = synth.render_song(configs["eval"].plan(index), configs["eval"].synth_config)
        length = len(truth.drums) // 2**17 * 2**17
        notes = truth.drum_notes[np.round(truth.drum_notes[:, 0] * SR) < length]
        np.testing.assert_allclose(song.drum_notes, notes, atol=1e-4)
        # The drums are the soundfont's; the drumless parts eval's, up to the mix's gain.
        for stem, low, high in (("drums", -0.5, 0.5), ("drumless", 0.999, 1.0)):
            x = getattr(song, stem).astype(np.float64)
            numpy_x = getattr(truth, stem)[:length].astype(np.float64)
            cosine = x @ numpy_x / np.sqrt((x @ x) * (numpy_x @ numpy_x))
            assert low < cosine <= high + 1e-9, (stem, cosine)
