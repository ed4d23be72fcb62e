"""Drum beat tracker: the tracker the objective metrics run on generated and real drums.

    python -m jdrum.train --config configs/tracker_drums.py --workdir runs/NAME/tracker_drums
    python -m jdrum.train --config configs/tracker_drums.py:tiny --workdir runs/tiny/tracker_drums

Expect (tiny): cross-entropy falling to ~0.1 and a high `eval/beat_f1` (drums are easy).
"""

from configs import tracker


def get_config(arg=None):
    return tracker.get_config("drums", arg)
