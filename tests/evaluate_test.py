"""`jdrum.evaluate` on an untrained tiny run with two LMs: every metric of every run, the files,
the table and the errors."""

import csv
import dataclasses
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import tiny_run

from jdrum import audio, data, runs, sound
from jdrum.beat import conditions, metrics
from jdrum.inference import evaluation

NUM_SONGS = 2
TRIP = evaluation.ROUND_TRIP
ROWS = ("run", "run", evaluation.CEILING, TRIP, TRIP, evaluation.FLOOR, evaluation.FLOOR)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(data_dir, run_dir): synthstems/tiny and a run with LMs `lm` and `lm_seq2seq_nobeat`."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tiny_run.build_dataset(data_dir)
    run = str(tmp_path_factory.mktemp("runs") / "tiny")
    written = tiny_run.make_tiny_run(run, data_dir, ("seq2seq_low", "seq2seq_nobeat"))
    assert written == {"lm": "seq2seq_low", "lm_seq2seq_nobeat": "seq2seq_nobeat"}
    return data_dir, run


@pytest.fixture(scope="module")
def evaluated(built, tmp_path_factory):
    """(result, labels, output_dir) of one evaluation of both LMs on the first test songs,
    with the REFERENCE §4.3 DBN made to fail: no metric may reach it."""
    data_dir, run = built
    labels = [f"{run}:lm", f"{run}:lm_seq2seq_nobeat"]
    output_dir = str(tmp_path_factory.mktemp("evaluation"))
    with mock.patch.object(conditions, "dbn_high_beats", side_effect=AssertionError("0.65 DBN")):
        result = evaluation.evaluate_runs(
            labels, tiny_run.DATASET, "test", data_dir, max_songs=NUM_SONGS, num_takes=2,
            output_dir=output_dir,
        )  # fmt: skip
    return result, labels, output_dir


def test_whole_songs_are_reassembled_from_their_clips(built):
    data_dir, _ = built
    source = evaluation.open_split(tiny_run.DATASET, "test", data_dir)
    songs = data.songs(source)
    clips = [source[i] for i in range(len(source))]
    assert [s.song_id for s in songs] == sorted({c["song_id"].decode() for c in clips})
    for song in songs:
        own = [c for c in clips if c["song_id"].decode() == song.song_id]
        assert song.start_sample == 0
        end = max(int(c["start_sample"]) + len(c["drums"]) for c in own)
        assert len(song.drums) == len(song.drumless) == end
        for clip in own:
            at = slice(int(clip["start_sample"]), int(clip["start_sample"]) + len(clip["drums"]))
            np.testing.assert_array_equal(song.drums[at], audio.from_pcm16(clip["drums"]))
            np.testing.assert_array_equal(song.drumless[at], audio.from_pcm16(clip["drumless"]))
        # Every clip's true beats once (50 % overlapping clips share beats), in order.
        times = np.concatenate(
            [c["true_beats"][:, 0] + int(c["start_sample"]) / audio.SAMPLE_RATE for c in own]
        )
        assert len(song.true_beats) == len(np.unique(np.round(times, 3)))
        assert np.all(np.diff(song.true_beats[:, 0]) > 0)
    assert len(data.songs(source, max_songs=1)) == 1
    one = evaluation.load_songs(source, "clip", 3)
    assert [s.song_id for s in one] == [
        f"{c['song_id'].decode()}#{c['clip_index']}" for c in clips[:3]
    ]


def test_every_metric_of_every_row_over_the_songs(evaluated):
    result, labels, _ = evaluated
    assert result["metrics"] == list(evaluation.METRIC_NAMES)
    assert result["reference"] == "true beats" and result["unit"] == "song"
    rows = result["rows"]
    assert list(rows)[:2] == labels and tuple(r["kind"] for r in rows.values()) == ROWS
    assert [rows[label]["lm"] for label in labels] == ["lm", "lm_seq2seq_nobeat"]
    for label, row in rows.items():
        assert row["num_songs"] == NUM_SONGS and len(row["songs"]) == NUM_SONGS
        assert [song["position"] for song in row["songs"]] == list(range(NUM_SONGS))
        for song in row["songs"]:
            assert song["song_id"].startswith("synthstems-")
            assert len(song["takes"]) == (2 if row["kind"] in ("run", "floor") else 1)
            for name in evaluation.METRIC_NAMES:
                assert math.isfinite(song[name]), (label, name, song[name])
                assert song[name] == pytest.approx(np.mean([t[name] for t in song["takes"]]))
        for name in evaluation.METRIC_NAMES:
            values = [song[name] for song in row["songs"]]
            stats = row["summary"][name]
            assert stats["count"] == NUM_SONGS
            assert stats["mean"] == pytest.approx(np.mean(values))
            assert min(values) - 1e-9 <= stats["low"] <= stats["mean"] <= stats["high"]
            assert stats["high"] <= max(values) + 1e-9
    # The takes of one song: how different (codes, tracker features) and the sampling time.
    for label, row in rows.items():
        has = [name in row["summary"] for name in evaluation.TAKE_NAMES]
        assert all(has) if row["kind"] == "run" else not any(has), label
    for label in labels:
        for song in rows[label]["songs"]:
            assert 0 < song["token_disagreement"] <= 1 and song["take_frechet"] > 0
            assert song["seconds_per_take"] > 0
        assert rows[label]["sampling"]["guidance"] == 1.0
    # The Fréchet distance of the pooled frames: 0 for the real drums, none for the floors.
    assert rows["real drums"]["frechet"]["mean"] == pytest.approx(0.0, abs=1e-6)
    for row in rows.values():
        if row["kind"] == "floor":
            assert row["frechet"] is None
        else:
            assert row["frechet"]["low"] <= row["frechet"]["high"]
            assert row["frechet"]["count"] == NUM_SONGS
    assert rows[labels[0]]["frechet"]["mean"] > 0.0
    # The Fréchet distance per song: a song's takes against its own real drums (the floor:
    # another song's), on every row; 0 for the real drums. Unprimed, the whole song is scored.
    for label, row in rows.items():
        assert row["summary"]["song_frechet"]["count"] == NUM_SONGS, label
        assert row["prime_bars"] == 0 and row["summary"]["song_frechet"]["mean"] == pytest.approx(
            np.mean([song["song_frechet"] for song in row["songs"]])
        )
        assert all(song["scored_from"] == 0.0 for song in row["songs"]), label
    assert all(s["song_frechet"] == pytest.approx(0, abs=1e-6) for s in rows["real drums"]["songs"])
    for label in (*labels, f"{labels[0]} vs another song"):
        assert all(song["song_frechet"] > 0.01 for song in rows[label]["songs"]), label
    assert result["prime_bars"] == 0 and result["priming"] == {}
    assert result["scored_seconds"] == pytest.approx(result["seconds"])
    # The ceiling is the real drums against themselves on Table 1; they follow the true beats.
    real = rows["real drums"]["summary"]
    assert real["trackemb_mse"]["mean"] == 0.0 and real["drums_beat_f1"]["mean"] == 1.0
    assert real["stft_distance"]["mean"] == 0.0 and real["onset_f1"]["mean"] == 1.0
    assert real["beat_f1"]["mean"] > 0.5
    # The round trips: the real mel and the (untrained) drum VQ-VAE's reconstruction, each
    # through Griffin-Lim, the run having no neural vocoder. The real mel keeps the onsets.
    alone, chain = (rows[f"{labels[0].split(':')[0]}: {m} + Griffin-Lim"]["summary"]
                    for m in ("real mel", "drum VQ-VAE"))  # fmt: skip
    assert alone["onset_f1"]["mean"] > 0.9 > chain["onset_f1"]["mean"]
    assert alone["stft_distance"]["mean"] < chain["stft_distance"]["mean"]
    # The floor pairs song i with song i - 1: its takes are the run's, its references not.
    floor = rows[f"{labels[0]} vs another song"]
    assert [s["against"] for s in floor["songs"]] == [
        rows[labels[0]]["songs"][i - 1]["song_id"] for i in range(NUM_SONGS)
    ]


def test_tables_have_a_line_per_row_and_a_column_per_metric(evaluated):
    result, labels, _ = evaluated
    table = result["table"]
    rhythm, drums, sounds, takes, frechet = table.split("\n\n")[1:]
    blocks = (
        (rhythm, metrics.RHYTHM_NAMES),
        (drums, metrics.DRUM_NAMES),
        (sounds, sound.SOUND_NAMES),
        (takes, evaluation.TAKE_NAMES),
    )
    for block, names in blocks:
        lines = block.splitlines()
        for name in names:
            assert evaluation.TITLES[name] in lines[1]
        for label, row in result["rows"].items():
            (line,) = [line for line in lines if line.startswith(label + "  ")]
            if names[0] not in row["summary"]:  # the takes of the reference rows
                assert line.count("[") == 0 and line.split()[-1] == "-"
                continue
            assert line.count("[") == len(names)
            stats = row["summary"][names[0]]
            assert f"{stats['mean']:.3f} [{stats['low']:.2f}, {stats['high']:.2f}]" in line
    assert takes.startswith("Takes of one song")
    assert rhythm.startswith("Rhythm against the true beats")
    # The Fréchet distances: per song on every row, pooled on all but the floors.
    lines = frechet.splitlines()
    assert lines[0].startswith("Fréchet distance to the real drums")
    assert (
        evaluation.TITLES["song_frechet"] in lines[1] and evaluation.TITLES["frechet"] in lines[1]
    )
    for label, row in result["rows"].items():
        (line,) = [line for line in lines if line.startswith(label + "  ")]
        assert _cell(row["summary"]["song_frechet"]) in line
        if row["kind"] == "floor":
            assert line.count("[") == 1 and line.split()[-1] == "-"
        else:
            assert line.endswith(_cell(row["frechet"]))
    assert "Priming" not in table


def _cell(stats):
    return f"{stats['mean']:.3f} [{stats['low']:.2f}, {stats['high']:.2f}]"


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20_000, 3))
    assert evaluation.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # Shifted means: |mu_a - mu_b|²; scaled spreads: sum over dims of (s_a - s_b)².
    assert evaluation.frechet_distance(a, a + [2.0, 0.0, 0.0]) == pytest.approx(4.0, rel=1e-6)
    assert evaluation.frechet_distance(a, 3.0 * a) == pytest.approx(3 * 2.0**2, rel=0.05)
    # Over songs: pooled frames, and an interval from resampling the songs.
    songs = [rng.standard_normal((500, 3)) + k for k in range(6)]
    same = evaluation.frechet_summary(songs, songs)
    assert same["mean"] == pytest.approx(0.0, abs=1e-9) and same["high"] == pytest.approx(
        0, abs=1e-9
    )
    shifted = evaluation.frechet_summary([x + 1.0 for x in songs], songs)
    assert shifted["mean"] == pytest.approx(3.0, rel=0.05)
    assert shifted["low"] <= shifted["mean"] <= shifted["high"] and shifted["count"] == 6
    with pytest.raises(ValueError, match="same songs"):
        evaluation.frechet_summary(songs, songs[:-1])


def test_json_and_csv_files(evaluated):
    result, labels, output_dir = evaluated
    assert result["files"] == {
        "json": os.path.join(output_dir, "evaluation.json"),
        "csv": os.path.join(output_dir, "evaluation.csv"),
    }
    with open(result["files"]["json"]) as f:
        saved = json.load(f)
    assert saved["dataset"] == tiny_run.DATASET and saved["split"] == "test"
    assert saved["num_songs"] == NUM_SONGS and saved["num_takes"] == 2
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    assert "table" not in saved and "files" not in saved
    with open(result["files"]["csv"], newline="") as f:
        lines = list(csv.DictReader(f))
    expected = ["row", "kind", "run_dir", "lm", "songs", "takes"]
    names = evaluation.METRIC_NAMES + evaluation.TAKE_NAMES
    expected += [f"{n}_{s}" for n in names for s in ("mean", "low", "high", "std")]
    expected += ["song_frechet_mean", "song_frechet_low", "song_frechet_high", "song_frechet_std"]
    expected += ["frechet_mean", "frechet_low", "frechet_high"]
    assert list(lines[0]) == expected
    assert [line["row"] for line in lines] == list(result["rows"])
    for line in lines:
        summary = result["rows"][line["row"]]["summary"]
        assert int(line["songs"]) == NUM_SONGS
        for name in evaluation.METRIC_NAMES + evaluation.SONG_NAMES:
            for stat in ("mean", "low", "high"):
                assert float(line[f"{name}_{stat}"]) == pytest.approx(summary[name][stat])


def test_one_row_per_guidance_weight(built, tmp_path):
    """`sweep` ("guidance", [W, ...]): a row (and a floor) per run and weight, on the same songs
    and seeds; W = 1 samples exactly the unguided takes. Guidance needs an LM trained with
    dropped conditions, and says so in one line otherwise."""
    data_dir, run = built
    with pytest.raises(evaluation.EvaluationError, match="trained with dropped conditions"):
        evaluation.evaluate_runs(
            [run], tiny_run.DATASET, "test", data_dir, overrides={"guidance": 2.0}
        )
    with pytest.raises(evaluation.EvaluationError, match="sweep: need one of temperature"):
        evaluation.evaluate_runs([run], tiny_run.DATASET, "test", data_dir, sweep=("W", [1]))
    guided = tmp_path / "guided"
    guided.mkdir()
    for part in ("vqvae_drums", "vqvae_drumless"):
        (guided / part).symlink_to(os.path.join(run, part))
    shutil.copytree(os.path.join(run, "lm"), guided / "lm")
    config = runs.read_config(guided / "lm")
    config.train.drop_both = 0.2  # as if trained so (the tiny LM is untrained anyway)
    runs.write_config(config, str(guided / "lm"))
    kwargs = dict(max_songs=2, num_takes=2, output_dir=str(tmp_path / "out"), verbose=False)
    result = evaluation.evaluate_runs(
        [str(guided)], tiny_run.DATASET, "test", data_dir, sweep=("guidance", [1, 2]), **kwargs
    )
    rows = result["rows"]
    labels = [f"{guided} guidance=1", f"{guided} guidance=2"]
    assert [label for label, row in rows.items() if row["kind"] == "run"] == labels
    assert [rows[f"{label} vs another song"]["kind"] for label in labels] == ["floor"] * 2
    assert [rows[label]["sampling"]["guidance"] for label in labels] == [1.0, 2.0]
    assert result["sweep"] == ["guidance", [1, 2]]
    plain = evaluation.evaluate_runs([str(guided)], tiny_run.DATASET, "test", data_dir, **kwargs)
    for name in ("beat_f1", "token_disagreement"):
        assert [s[name] for s in plain["rows"][str(guided)]["songs"]] == [
            s[name] for s in rows[labels[0]]["songs"]
        ]
    trackemb = [[s["trackemb_mse"] for s in rows[label]["songs"]] for label in labels]
    assert trackemb[0] != trackemb[1]  # guided takes differ


def test_run_values_name_the_lm(built):
    _, run = built
    assert evaluation.parse_run(run) == evaluation.RunSpec(run, run, "lm")
    other = f"{run}:lm_seq2seq_nobeat"
    assert evaluation.parse_run(other) == evaluation.RunSpec(other, run, "lm_seq2seq_nobeat")
    assert evaluation.parse_run(run, "lm_seq2seq_nobeat").lm == "lm_seq2seq_nobeat"


def test_missing_runs_are_clear_errors(built, tmp_path):
    data_dir, run = built
    missing = str(tmp_path / "nothing")
    with pytest.raises(evaluation.EvaluationError, match=r"nothing: no such run directory$"):
        evaluation.evaluate_runs([run, missing], tiny_run.DATASET, "test", data_dir)
    with pytest.raises(evaluation.EvaluationError, match=r"has no lm_gone/ \(a run needs"):
        evaluation.evaluate_runs([f"{run}:lm_gone"], tiny_run.DATASET, "test", data_dir)
    with pytest.raises(evaluation.EvaluationError, match="named twice"):
        evaluation.evaluate_runs([run, run], tiny_run.DATASET, "test", data_dir)
    # The command line: one line on stderr, no traceback.
    command = [sys.executable, "-m", "jdrum.evaluate", f"--run={missing}", "--dataset=synthstems"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 1
    assert (
        done.stderr.strip().splitlines()[-1] == f"jdrum.evaluate: {missing}: no such run directory"
    )
    assert "Traceback" not in done.stderr


def test_missing_datasets_and_splits_are_clear_errors(built, tmp_path):
    data_dir, run = built
    with pytest.raises(evaluation.EvaluationError, match=r"^synthstems/demo is not built in"):
        evaluation.evaluate_runs([run], "synthstems/demo", "test", data_dir)
    assert not glob.glob(os.path.join(data_dir, "synthstems", "demo", "*", "features.json"))
    with pytest.raises(evaluation.EvaluationError, match=r"has no split 'tset'; splits: train"):
        evaluation.evaluate_runs([run], tiny_run.DATASET, "tset", data_dir)
    with pytest.raises(evaluation.EvaluationError, match="unknown dataset 'nodata'"):
        evaluation.evaluate_runs([run], "nodata", "test", data_dir)
    with pytest.raises(evaluation.EvaluationError, match="num_takes >= 1"):
        evaluation.evaluate_runs([run], tiny_run.DATASET, "test", data_dir, num_takes=0)


def test_song_seeds():
    seeds = {evaluation.song_seed(0, i) for i in range(100)} | {evaluation.song_seed(1, 0)}
    assert len(seeds) == 101 and evaluation.song_seed(0, 7) == evaluation.song_seed(0, 7)


PRIME_BARS = 1
PRIME_TAKES = 1  # one take: the quicker test


@pytest.fixture(scope="module")
def primed(built, tmp_path_factory):
    """(result, run, calls) of one evaluation of `lm` primed with each song's first bar, every
    `take_metrics` call recorded as (take, reference)."""
    data_dir, run = built
    calls, take_metrics = [], evaluation.take_metrics

    def spy(take, reference):
        calls.append((take, reference))
        return take_metrics(take, reference)

    with mock.patch.object(evaluation, "take_metrics", side_effect=spy):
        result = evaluation.evaluate_runs(
            [run], tiny_run.DATASET, "test", data_dir, max_songs=NUM_SONGS, num_takes=PRIME_TAKES,
            prime_bars=PRIME_BARS, output_dir=str(tmp_path_factory.mktemp("primed")),
            verbose=False,
        )  # fmt: skip
    return result, run, calls


def _prime_ends(data_dir):
    """Per song: (prime end token, first frame after it) of a one-bar prime from 0 s: the
    song's whole tokens before its second true downbeat, and the frame (100/s) at or after
    their end."""
    songs = data.songs(evaluation.open_split(tiny_run.DATASET, "test", data_dir), NUM_SONGS)
    out = []
    for song in songs:
        downbeats = song.true_beats[song.true_beats[:, 1] == 1, 0]
        end = round(downbeats[PRIME_BARS] * audio.SAMPLE_RATE) // 1024
        out.append((song, end, math.ceil(round(end * 1024 * 100 / audio.SAMPLE_RATE, 9))))
    return out


def test_primed_twins_are_scored_after_the_prime(built, primed, evaluated):
    """`prime_bars`: a twin row per run, primed with each song's first bar of real drums from
    0 s, and every row of the evaluation scored from the first frame after that prime."""
    result, run, calls = primed
    rows = result["rows"]
    twin = f"{run} primed 1 bar"
    trips = [f"{run}: {mel} + Griffin-Lim" for mel in ("real mel", "drum VQ-VAE")]
    floors = [f"{run} vs another song", f"{twin} vs another song"]
    assert list(rows) == [run, twin, "real drums", *trips, *floors]
    assert [row["kind"] for row in rows.values()] == ["run", "run", "ceiling", TRIP, TRIP] + [
        "floor"
    ] * 2
    assert [row["prime_bars"] for row in rows.values()] == [0, 1, 0, 0, 0, 0, 1]
    assert rows[twin]["sampling"] == rows[run]["sampling"] and result["prime_bars"] == 1
    ends = _prime_ends(built[0])
    for label, row in rows.items():
        for entry, (song, end, first) in zip(row["songs"], ends, strict=True):
            assert entry["song_id"] == song.song_id
            assert entry["scored_from"] == pytest.approx(first / 100), label
            assert entry.get("primed_tokens") == ([0, end] if label == twin else None), label
            assert math.isfinite(entry["beat_f1"]) and math.isfinite(entry["song_frechet"])
    assert result["scored_seconds"] == pytest.approx(
        sum(song.seconds - first / 100 for song, _, first in ends)
    )
    assert "scored after the first 1 bar of each song" in result["table"].splitlines()[0]
    # Every metric of every row saw only the part after the prime: the stems from the first
    # frame on (their samples too), and the true beats after it with shifted times.
    scored = {len(song.drums) - first * 441: (song, first) for song, _, first in ends}
    assert len(calls) == NUM_SONGS * (2 * PRIME_TAKES + 1 + 2) + NUM_SONGS * 2 * PRIME_TAKES
    for take, reference in calls:
        for stem in (take, reference.drums):  # a floor's take and reference: different songs
            song, first = scored[len(stem.audio)]
            assert (
                len(stem.embedding)
                == len(stem.probabilities)
                == math.ceil(len(song.drums) / 441) - first
            )
        song, first = scored[len(reference.drums.audio)]
        beats = song.true_beats[song.true_beats[:, 0] >= first / 100]
        np.testing.assert_allclose(reference.beats, beats - [first / 100, 0])
        assert np.all(take.beats[:, 0] >= 0)
    # The ceiling on that part: still the real drums against themselves, but not the values of
    # the whole song.
    real = rows["real drums"]
    assert real["summary"]["trackemb_mse"]["mean"] == 0.0
    assert real["summary"]["onset_f1"]["mean"] == 1.0
    assert all(s["song_frechet"] == pytest.approx(0, abs=1e-6) for s in real["songs"])
    whole = evaluated[0]["rows"]["real drums"]["songs"]
    assert [s["song_id"] for s in whole] == [s["song_id"] for s in real["songs"]]
    for part, song in zip(real["songs"], whole, strict=True):
        assert part["act_entropy"] != pytest.approx(song["act_entropy"], rel=1e-6)
    assert all(s["song_frechet"] > 0.01 for s in rows[twin]["songs"] + rows[run]["songs"])


def test_priming_compares_each_run_with_its_twin(primed):
    result, run, _ = primed
    rows = result["rows"]
    twin = f"{run} primed 1 bar"
    assert list(result["priming"]) == [run] and result["priming"][run]["primed"] == twin
    for name, lower in evaluation.PRIMING_NAMES.items():
        stats = result["priming"][run][name]
        before = np.array([s[name] for s in rows[run]["songs"]])
        after = np.array([s[name] for s in rows[twin]["songs"]])
        assert stats["unprimed"]["mean"] == pytest.approx(rows[run]["summary"][name]["mean"])
        assert stats["primed"]["mean"] == pytest.approx(rows[twin]["summary"][name]["mean"])
        assert stats["difference"]["mean"] == pytest.approx(np.mean(after - before))
        change = stats["difference"]
        assert change["low"] <= change["mean"] <= change["high"]
        assert stats["better"] == np.sum(after < before if lower else after > before)
        assert stats["count"] == NUM_SONGS
    block = result["table"].split("\n\n")[-1].splitlines()
    assert block[0].startswith("Priming: each run against its twin primed with the first 1 bar")
    lines = [line for line in block if line.startswith(run + "  ")]
    assert len(lines) == len(evaluation.PRIMING_NAMES)
    for line, name in zip(lines, evaluation.PRIMING_NAMES, strict=True):
        stats = result["priming"][run][name]
        assert evaluation.TITLES[name] in line
        assert line.endswith(f"{stats['better']}/{NUM_SONGS}")
        assert f"{stats['difference']['mean']:+.4f}" in line
    with open(result["files"]["json"]) as f:
        saved = json.load(f)
    assert saved["prime_bars"] == 1
    assert saved["priming"] == json.loads(json.dumps(result["priming"]))


def test_scoring_from_a_frame_on():
    """`Tracked.after` / `Reference.after`: the frames, samples and beats from a frame on, the
    beat times shifted by it on both sides."""
    rng = np.random.default_rng(0)
    stem = evaluation.Tracked(
        rng.standard_normal(1000 * 441), rng.standard_normal((1000, 50)),
        rng.random((1000, 3)), np.array([[0.5, 1], [1.99, 4], [2.0, 2], [3.25, 1]]),
    )  # fmt: skip
    part = stem.after(200)
    np.testing.assert_array_equal(part.audio, stem.audio[200 * 441 :])
    np.testing.assert_array_equal(part.embedding, stem.embedding[200:])
    np.testing.assert_array_equal(part.probabilities, stem.probabilities[200:])
    np.testing.assert_allclose(part.beats, [[0.0, 2], [1.25, 1]])
    reference = evaluation.Reference(np.array([[1.0, 1], [2.5, 2]]), stem).after(200)
    np.testing.assert_allclose(reference.beats, [[0.5, 2]])
    assert len(reference.drums.embedding) == 800
    assert stem.after(0).beats.shape == (4, 2) and stem.after(1000).beats.shape == (0, 2)


def test_priming_needs_true_downbeats(built):
    """A dataset without true downbeats, or a song with too few, is a one-line error before
    anything is sampled, also from the command line."""
    data_dir, run = built
    load_songs = evaluation.load_songs

    def without_beats(*args):
        return [dataclasses.replace(s, true_beats=np.zeros((0, 2))) for s in load_songs(*args)]

    with mock.patch.object(evaluation, "load_songs", side_effect=without_beats):
        with pytest.raises(evaluation.EvaluationError) as error:
            evaluation.evaluate_runs([run], tiny_run.DATASET, "test", data_dir, prime_bars=1)
    assert str(error.value) == (
        "prime_bars needs the true beats and downbeats of every song; synthstems/tiny test has "
        "songs without them"
    )
    with pytest.raises(evaluation.EvaluationError) as error:
        evaluation.evaluate_runs([run], tiny_run.DATASET, "test", data_dir, prime_bars=50)
    assert "\n" not in str(error.value)
    assert re.fullmatch(
        r"synthstems-\d+ has \d+ true downbeats, prime_bars 50 needs 51", str(error.value)
    )
    with pytest.raises(evaluation.EvaluationError, match="prime_bars >= 0"):
        evaluation.evaluate_runs([run], tiny_run.DATASET, "test", data_dir, prime_bars=-1)
    # The command line's --prime_bars reaches evaluate_runs.
    command = [sys.executable, "-m", "jdrum.evaluate", f"--run={run}", f"--data_dir={data_dir}",
               f"--dataset={tiny_run.DATASET}", "--max_songs=2", "--prime_bars=50"]  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"jdrum.evaluate: {error.value}"
