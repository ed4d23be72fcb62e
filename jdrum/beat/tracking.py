"""A loaded beat tracker: audio in, per-frame embedding and probabilities out.

`jdrum.runs.tracker(name)` loads one by name ("madmom", "run:DIR", "da2:FILE"). For madmom's
ensemble the probabilities are the mean of its 8 networks, as madmom computes them, and the
embedding is the first network's (the 8 networks' hidden units do not correspond).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jdrum.beat import features, network


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
            emb, probs = network.track(self.variables, feats_BxTxF[start : start + self.batch_size])
            if network.is_ensemble(self.variables):
                emb = emb[0]
            embeddings.append(np.asarray(emb, np.float32))
            probabilities.append(np.asarray(probs, np.float32))
        return np.concatenate(embeddings)[:n], np.concatenate(probabilities)[:n]
