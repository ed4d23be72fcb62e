"""`jdrum.inference.midi`: the tempo map follows the beats (tempo changes, a 3/4 → 4/4 change,
pickups), notes survive a written file, writing is all or nothing, rendering plays the notes."""

import os

import mido
import numpy as np
import pretty_midi
import pytest

from jdrum import audio, sound
from jdrum.inference import midi

# A pickup of two beats (positions 3, 4), a bar of 4/4, two of 3/4, two of 4/4 and a last bar
# that stops at its second beat; the tempo speeds up from 100 to 130 BPM and slows again.
POSITIONS = [3, 4, 1, 2, 3, 4, 1, 2, 3, 1, 2, 3, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2]
INTERVALS = 60 / np.concatenate([np.linspace(100, 130, 12), np.linspace(130, 110, 9)])
MS = 1e-3


def _beats(first: float) -> np.ndarray:
    times = first + np.concatenate([[0], np.cumsum(INTERVALS)])
    return np.stack([times, POSITIONS], axis=1)


def _read_back(song, tmp_path) -> pretty_midi.PrettyMIDI:
    path = tmp_path / "song.mid"
    midi.write_midi(path, song)
    return pretty_midi.PrettyMIDI(str(path))


def _signatures(song) -> list[tuple[int, int]]:
    return [(s.numerator, s.denominator) for s in song.time_signature_changes]


@pytest.mark.parametrize(
    "first, signatures",
    [
        # 1.2 s before the first beat: two beats at positions 1 and 2 fill it, a whole bar.
        (1.2, [(4, 4), (3, 4), (4, 4)]),
        # 0.25 s: under half a beat, an eighth in a 1/8 bar; then the pickup bar of 2 beats.
        (0.25, [(1, 8), (2, 4), (4, 4), (3, 4), (4, 4)]),
        # At 0 s: the pickup is bar 1.
        (0.0, [(2, 4), (4, 4), (3, 4), (4, 4)]),
    ],
)
def test_the_tempo_map_follows_the_beats(tmp_path, first, signatures):
    beats = _beats(first)
    notes = np.stack([beats[:, 0], np.where(beats[:, 1] == 1, 36, 42), np.full(len(beats), 90)], 1)
    notes = np.concatenate([[[0.1, 49, 100]], notes])  # a note before the first beat
    song = _read_back(midi.drum_midi(notes, beats, end=beats[-1, 0] + 1.0), tmp_path)
    assert midi.tempo_map_error(song, beats) < MS
    grid = song.get_beats()
    inside = grid[(grid > beats[0, 0] - MS) & (grid < beats[-1, 0] + MS)]
    np.testing.assert_allclose(inside, beats[:, 0], atol=MS)  # one MIDI beat for each, no more
    assert grid[-1] > beats[-1, 0] + 0.3  # the last tempo holds to the end of the audio
    assert _signatures(song) == signatures
    downbeats = song.get_downbeats()
    # Bar lines: the beats at position 1, and before the first of them the pickup bars' starts.
    np.testing.assert_allclose(
        downbeats[downbeats > beats[0, 0] + MS], beats[beats[:, 1] == 1, 0], atol=MS
    )
    assert downbeats[0] == 0.0 and np.all(downbeats[downbeats <= beats[0, 0] + MS] < 2.0)
    onsets = midi.drum_notes(song)[:, 0]
    np.testing.assert_allclose(onsets, np.sort(notes[:, 0]), atol=0.5 * MS)


def test_a_first_beat_within_8_ms_of_the_start_goes_to_the_start(tmp_path):
    beats = _beats(0.005)  # a pickup note would need over 960 BPM
    song = _read_back(midi.drum_midi(np.zeros((0, 3)), beats), tmp_path)
    assert midi.tempo_map_error(song, beats) == pytest.approx(0.005, abs=1e-4)
    assert midi.tempo_map_error(song, beats[1:]) < MS
    assert _signatures(song)[0] == (2, 4)


def test_a_long_song_keeps_the_map_through_the_file(tmp_path):
    rng = np.random.default_rng(0)
    intervals = 0.45 + 0.03 * rng.standard_normal(800)  # 6 minutes, a new tempo every beat
    beats = np.stack([0.3 + np.cumsum(intervals), np.arange(800) % 4 + 1], axis=1)
    song = _read_back(midi.drum_midi(np.zeros((0, 3)), beats), tmp_path)
    assert midi.tempo_map_error(song, beats) < MS
    np.testing.assert_allclose(song.get_downbeats()[1:], beats[beats[:, 1] == 1, 0], atol=MS)


def test_bars_midi_readers_would_misread_are_split(tmp_path):
    positions = [1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 1, 2, 3] + [2] * 14  # 6 beats, then 17 unbarred
    beats = np.stack([0.5 * np.arange(1, 28), positions], axis=1)
    song = _read_back(midi.drum_midi(np.zeros((0, 3)), beats), tmp_path)
    assert _signatures(song) == [(1, 4), (4, 4), (2, 4), (4, 4), (5, 4)]
    assert midi.tempo_map_error(song, beats) < MS


def test_no_beats_is_120_bpm_in_4_4(tmp_path):
    song = _read_back(midi.drum_midi([[0.5, 36, 100], [1.25, 38, 80]]), tmp_path)
    times, tempi = song.get_tempo_changes()
    np.testing.assert_allclose(tempi, [120.0])
    assert _signatures(song) == [(4, 4)]
    np.testing.assert_allclose(song.get_beats(), [0.0, 0.5, 1.0])


def test_notes_velocities_and_channel_survive_the_file(tmp_path):
    notes = np.array(
        [
            [0.50, 36, 100],
            [0.50, 36, 120],  # the same key on the same tick: one note, the louder
            [0.53, 36, 90],  # 30 ms later: the first one stops there
            [0.50, 42, 0],  # velocities are clipped to 1-127
            [1.00, 38, 200],
            [1.2502, 51, 63.6],
            [-0.2, 49, 70],  # before the start: at 0 s
        ]
    )
    beats = np.stack([0.25 + 0.5 * np.arange(6), [1, 2, 3, 4, 1, 2]], axis=1)
    song = _read_back(midi.drum_midi(notes, beats, end=3.0), tmp_path)
    (instrument,) = song.instruments
    assert instrument.is_drum and instrument.program == 0 and instrument.name == "Drums"
    got = sorted((round(n.start, 3), n.pitch, n.velocity, round(n.end - n.start, 3))
                 for n in instrument.notes)  # fmt: skip
    assert got == [
        (0.0, 49, 70, 0.1),
        (0.5, 36, 120, 0.03),
        (0.5, 42, 1, 0.1),
        (0.53, 36, 90, 0.1),
        (1.0, 38, 127, 0.1),
        (1.25, 51, 64, 0.1),
    ]
    file = mido.MidiFile(tmp_path / "song.mid")
    channels = {m.channel for track in file.tracks for m in track if not m.is_meta}
    assert channels == {9} and file.type == 1 and file.ticks_per_beat == midi.RESOLUTION
    assert song.get_end_time() == pytest.approx(3.0, abs=MS)


def test_a_failed_write_leaves_the_old_file_and_no_other(tmp_path, monkeypatch):
    path = tmp_path / "song.mid"
    path.write_bytes(b"the old file")

    def broken_save(self, filename=None, file=None):
        file.write(b"MThd half a file")
        raise OSError("disk full")

    monkeypatch.setattr(mido.MidiFile, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        midi.write_midi(path, midi.drum_midi([[0.5, 36, 100]]))
    assert path.read_bytes() == b"the old file"
    assert os.listdir(tmp_path) == ["song.mid"]


def test_a_missing_folder_is_a_one_line_error_before_any_work(tmp_path):
    folder = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        midi.write_midi(folder / "song.mid", None)  # checked before the MIDI is looked at
    assert str(folder) in str(error.value) and "\n" not in str(error.value)
    assert not folder.exists()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        midi.check_output(tmp_path)


def test_bad_notes_and_beats_are_errors():
    with pytest.raises(ValueError, match=r"notes must be \(N, 3\)"):
        midi.drum_midi(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="MIDI keys"):
        midi.drum_midi([[0.5, 128, 100]])
    with pytest.raises(ValueError, match="NaN"):
        midi.drum_midi([[0.5, 36, 100]], [[np.nan, 1]])


def test_render_plays_the_notes_at_their_times():
    times = np.array([0.5, 1.0, 1.6, 2.2])
    notes = np.stack([times, [36, 38, 36, 38], [100, 90, 110, 80]], axis=1)
    beats = np.stack([0.5 * np.arange(1, 6), [1, 2, 3, 4, 1]], axis=1)
    length = 3 * audio.SAMPLE_RATE
    for source in (notes, midi.drum_midi(notes, beats)):
        x = midi.render(source, length=length)
        assert x.shape == (length,) and x.dtype == np.float32
        assert np.max(np.abs(x[: int(0.49 * audio.SAMPLE_RATE)])) == 0.0  # nothing before
        onsets = sound.onsets(x)
        assert len(onsets) == len(times)
        np.testing.assert_allclose(onsets, times, atol=0.03)
    assert len(midi.render(notes)) == round(3.2 * audio.SAMPLE_RATE)  # 1 s after the last
