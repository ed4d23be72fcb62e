"""Drumless ("non-drum") beat tracker: the tracker that conditions the LM at sampling time.

    python -m jdrum.train --config configs/tracker_drumless.py --workdir runs/NAME/tracker_drumless
    python -m jdrum.train --config configs/tracker_drumless.py:tiny \\
        --workdir runs/tiny/tracker_drumless          # synthstems/tiny on CPU, a few minutes

Expect (tiny): cross-entropy falling from ~1.1 to ~0.1 and beat F1 on the validation clips
printed at the end (`eval/beat_f1`).
"""

from configs import tracker


def get_config(arg=None):
    return tracker.get_config("drumless", arg)
