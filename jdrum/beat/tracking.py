"""Beat features of audio from a named tracker: what the data builders, sampling and the
metrics call.

Tracker names (`load`):

* ``"madmom"``: madmom's 8 downbeat BLSTMs in JAX (weights read from the installed madmom
  package; CC BY-NC-SA 4.0). Probabilities are the ensemble mean, as madmom computes them;
  the embedding is the first network's (the 8 networks' hidden units do not correspond).
* ``"run:DIR"``: a tracker trained by `python -m jdrum.train --config configs/tracker_*.py`.
* ``"da2:FILE"``: the official DA2 tracker (`RNNBeatProc.pth`, read with torch, the `convert`
  extra; or a `.npz` of its state_dict), its "nodrum" head as JukeDrummer uses it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from jdrum.beat import features, tracker


@dataclasses.dataclass(frozen=True, eq=False)
class Tracker:
    """A loaded tracker: audio in, per-frame (100 fps) embedding and probabilities out."""

    name: str
    variables: Any
    batch_size: int = 8  # clips per jitted call; the last chunk is zero-padded (one compile)

    def __call__(self, audio_BxL) -> tuple[np.ndarray, np.ndarray]:
        """Tracks equal-length mono 44.1 kHz clips.

        Returns:
          embedding (B, T, 50) float32 and probabilities (B, T, 3) [non-beat, downbeat, beat],
          T = ceil(L / 441).
        """
        feats_BxTxF = features.batch_features(list(np.asarray(audio_BxL, np.float32)))
        n = len(feats_BxTxF)
        padded = -n % self.batch_size
        feats_BxTxF = np.pad(feats_BxTxF, ((0, padded), (0, 0), (0, 0)))
        embeddings, probabilities = [], []
        for start in range(0, len(feats_BxTxF), self.batch_size):
            emb, probs = tracker.track(self.variables, feats_BxTxF[start : start + self.batch_size])
            if tracker.is_ensemble(self.variables):
                emb = emb[0]
            embeddings.append(np.asarray(emb, np.float32))
            probabilities.append(np.asarray(probs, np.float32))
        return np.concatenate(embeddings)[:n], np.concatenate(probabilities)[:n]


@functools.lru_cache(maxsize=4)
def load(name: str) -> Tracker:
    """The tracker called `name` (see the module docstring)."""
    from jdrum.beat import weights

    if name == "madmom":
        return Tracker(name, weights.load_madmom_downbeat_ensemble())
    kind, sep, location = name.partition(":")
    if sep and kind == "run":
        from jdrum.trainers import tracker as tracker_trainer

        _, params = tracker_trainer.load(location)
        return Tracker(name, params)
    if sep and kind == "da2":
        from jdrum import convert

        return Tracker(name, convert.da2_tracker_variables(location))
    raise ValueError(f"unknown tracker {name!r}: 'madmom', 'run:DIR' or 'da2:FILE'")
