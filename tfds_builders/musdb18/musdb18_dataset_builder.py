"""musdb18: MUSDB18-HQ (wav) and MUSDB18 (.stem.mp4) as paired drum / drumless clip records.

drums = the `drums` stem; drumless = vocals + bass + other (summed; the released mixture is not
the sum of the stems in the mp4 release). The `.stem.mp4` release is decoded with ffmpeg when
it is installed; without it the build stops with a pointer to the wav release (MUSDB18-HQ).

Splits follow MUSDB18's own folders (`official_split`): every song of test/ is in `test`; the
songs of train/ are in `train`, except the ones whose recording hash (`records.split_of`, the
hash every jdrum dataset splits by) falls in its validation tenth, which form `validation`
(about 10 of the 100). The merged `jukedrummer` corpus ignores these and hashes every song.

    python -m jdrum.build_dataset musdb18 --manual_dir ~/data/musdb18hq --data_dir data/tfds
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from jdrum.datasets import multitrack, records

SUBSETS = ("train", "test")
DRUM_STEM = "drums"
DRUMLESS_STEMS = ("bass", "other", "vocals")
# Stream order of the Native Instruments stem files (the musdb package's `stem_ids`).
STREAMS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
STEM_SUFFIX = ".stem.mp4"


def find_root(root: str) -> str:
    """`root` if it holds train/ or test/, else its only sub-folder that does."""
    if any(os.path.isdir(os.path.join(root, s)) for s in SUBSETS):
        return root
    children = [
        os.path.join(root, name)
        for name in sorted(os.listdir(root))
        if not multitrack.is_hidden(name) and os.path.isdir(os.path.join(root, name))
    ]
    if len(children) == 1 and any(os.path.isdir(os.path.join(children[0], s)) for s in SUBSETS):
        return children[0]
    raise multitrack.DatasetError(f"{root}: no train/ or test/ folder (the MUSDB18 layout)")


def official_split(subset: str, song: str) -> str:
    """The split of `song` in MUSDB18's folder `subset` ("train" or "test").

    test/ -> "test". train/ -> "validation" when the song's recording hash puts it in jdrum's
    validation tenth (the split it has in every hash-split dataset), else "train": about 10 %
    of the train songs, and the same ones whatever else is in the folder.
    """
    if subset == "test":
        return "test"
    hashed = records.split_of(multitrack.split_key(song))
    return "validation" if hashed == "validation" else "train"


def list_tracks(root: str) -> multitrack.Listing:
    """Every song under `<root>/{train,test}`: a folder of wavs (HQ) or a `.stem.mp4` file,
    with its `official_split`."""
    base = find_root(root)
    listing = multitrack.Listing(tracks=[])
    for subset in SUBSETS:
        folder = os.path.join(base, subset)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if multitrack.is_hidden(name):
                continue
            if os.path.isdir(path):
                drums = (os.path.join(path, f"{DRUM_STEM}.wav"),)
                drumless = tuple(os.path.join(path, f"{s}.wav") for s in DRUMLESS_STEMS)
                song = name
            elif name.endswith(STEM_SUFFIX):  # never split on the first dot: "M.E.R.C. Music"
                drums = (multitrack.stream_ref(path, STREAMS[DRUM_STEM]),)
                drumless = tuple(multitrack.stream_ref(path, STREAMS[s]) for s in DRUMLESS_STEMS)
                song = name[: -len(STEM_SUFFIX)]
            else:
                continue
            # Decoded AAC streams may differ by a few frames; a second more is a broken file.
            track = multitrack.Track(
                song,
                "musdb18",
                drums,
                drumless,
                max_length_mismatch_s=1.0,
                assigned_split=official_split(subset, song),
            )
            listing.tracks.append(track)
    return listing


class Builder(multitrack.MultitrackBuilder):
    """MUSDB18 / MUSDB18-HQ songs as drum / drumless clip pairs."""

    VERSION = tfds.core.Version("2.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "2.0.0": "Splits follow MUSDB18's train/ and test/ folders; validation is the train "
        "songs in the recording hash's validation tenth (was: 80/10/10 hash of every song).",
        "2.1.0": records.RAW_BYTES_NOTE,
    }
    BUILDER_CONFIGS = multitrack.default_configs()
    HOMEPAGE = "https://sigsep.github.io/datasets/musdb.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download MUSDB18-HQ (zenodo.org/record/3338373, wav) or MUSDB18 (zenodo.org/record/1117372,
    .stem.mp4, needs ffmpeg) and unzip it; pass the folder holding train/ and test/ (or its
    parent) as --manual_dir.
    """

    def list_tracks(self, root: str) -> multitrack.Listing:
        return list_tracks(root)
