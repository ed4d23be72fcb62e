"""The official DA2 beat tracker (`RNNBeatProc.pth`) in a converted run: its "nodrum" head,
the part JukeDrummer uses (REFERENCE §4.2), saved as `tracker_da2.npz` and named in the run's
`tracker.json`, which `jdrum.runs.tracker` reads ("da2:FILE") without torch.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from jdrum import runs, torch_io
from jdrum.beat import weights

HEAD_FILE = "tracker_da2.npz"


def nodrum_head(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The `nodrumBeat.*` entries of a DA2 tracker file (bare state_dict or under `param/`).

    Raises:
      ValueError: the head is missing or does not convert (checked here, not at sampling).
    """
    state_dict = torch_io.read_checkpoint(path)
    state_dict = state_dict.get("param", state_dict)
    head = {k: np.asarray(v) for k, v in state_dict.items() if k.startswith(weights.DA2_PREFIX)}
    weights.da2_nodrum_params(head)
    return head


def write_tracker(path: str | os.PathLike, run_dir: str | os.PathLike) -> None:
    """Writes the head of the DA2 tracker file `path` into `run_dir` and names it in
    `tracker.json` (with the file it came from)."""
    run = pathlib.Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    np.savez(run / HEAD_FILE, **nodrum_head(path))
    with open(run / runs.TRACKER_FILE, "w") as f:
        json.dump({"tracker": f"da2:{HEAD_FILE}", "source": str(path)}, f)
