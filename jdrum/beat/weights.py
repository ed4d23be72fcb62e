"""Tracker weights: madmom's packaged downbeat ensemble and DA2's nodrum head, as flax trees.

Weights are read at run time and never stored in this repository:

* madmom's 8 `downbeats_blstm_[1-8].pkl` networks come with the madmom package.
  madmom's model weights are CC BY-NC-SA 4.0.
* DA2's `nodrumBeat.*` entries come from the reference `RNNBeatProc.pth` state_dict, given
  here as a mapping of names to NumPy arrays (no torch needed).

Both return flax variables `{"params": tree}` of `jdrum.beat.network.BeatTracker` (layout in that
module's docstring), ready for `model.apply` / `tracker.track`, with probability columns in DA2's
order [non-beat, downbeat, beat]. Leaves are host NumPy float32 arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax
import numpy as np

from jdrum.beat.network import Variables

# Column j of a flax output layer = column MADMOM_TO_DA2[j] of madmom's, whose softmax order is
# [non-beat, beat, downbeat].
MADMOM_TO_DA2 = (0, 2, 1)
MADMOM_GATES = ("input_gate", "forget_gate", "cell", "output_gate")  # fused order i, f, g, o
MADMOM_PEEPHOLES = ("input_gate", "forget_gate", "output_gate")
DA2_PREFIX = "nodrumBeat."


def _madmom_lstm(layer) -> dict[str, np.ndarray]:
    """One madmom `LSTMLayer` as the parameters of `tracker.LSTMLayer(peephole=True)`."""
    for name in ("init", "cell_init"):
        if np.any(getattr(layer, name)):
            raise ValueError(f"madmom LSTM with a non-zero {name} is not supported")
    gates = [getattr(layer, name) for name in MADMOM_GATES]
    return {
        "input_kernel": np.concatenate([g.weights for g in gates], axis=1),
        "recurrent_kernel": np.concatenate([g.recurrent_weights for g in gates], axis=1),
        "bias": np.concatenate([g.bias.reshape(-1) for g in gates]),
        "peephole": np.stack(
            [getattr(layer, name).peephole_weights.reshape(-1) for name in MADMOM_PEEPHOLES]
        ),
    }


def madmom_network_variables(network) -> Variables:
    """Converts one madmom `NeuralNetwork` (3 `BidirectionalLayer`s + softmax layer).

    Args:
      network: a `madmom.ml.nn.NeuralNetwork` of the RNNDownBeat architecture.

    Returns:
      Variables `{"params": tree}` of `BeatTracker(peephole=True, head="madmom")`.
    """
    *blstms, output = network.layers
    params = {}
    for i, layer in enumerate(blstms):
        params[f"blstm_{i}"] = {
            "fwd": _madmom_lstm(layer.fwd_layer),
            "bwd": _madmom_lstm(layer.bwd_layer),
        }
    index = list(MADMOM_TO_DA2)
    params["output"] = {
        "kernel": np.asarray(output.weights)[:, index],
        "bias": np.asarray(output.bias).reshape(-1)[index],
    }
    return _variables(params)


@functools.lru_cache(maxsize=1)
def _madmom_ensemble() -> Variables:
    from jdrum.beat.madmom_compat import madmom

    networks = [madmom.ml.nn.NeuralNetwork.load(path) for path in madmom.models.DOWNBEATS_BLSTM]
    trees = [madmom_network_variables(network) for network in networks]
    return jax.tree.map(lambda *leaves: np.stack(leaves), *trees)


def load_madmom_downbeat_ensemble() -> Variables:
    """madmom's 8 RNNDownBeat networks (madmom/models/downbeats/2016/downbeats_blstm_*.pkl).

    Returns:
      Variables `{"params": tree}` of `BeatTracker(peephole=True, head="madmom")` with a leading
      axis of 8 on every leaf, for `tracker.track` / `tracker.ensemble`. Loaded once per process.
    """
    return jax.tree.map(np.copy, _madmom_ensemble())


def da2_nodrum_params(state_dict: Mapping[str, np.ndarray]) -> Variables:
    """Converts DA2's `nodrumBeat.*` entries (PyTorch names) into flax variables.

    PyTorch LSTM: `weight_ih_l{k}` (4H, I), `weight_hh_l{k}` (4H, H), gates i, f, g, o (the
    fused order used here, so only a transpose is needed), `bias_ih` + `bias_hh` summed;
    `_reverse` is the backward direction. Every other key of the state_dict is ignored.

    Args:
      state_dict: DA2 state_dict (e.g. of `RNNBeatProc.pth`) with NumPy array values.

    Returns:
      Variables `{"params": tree}` of `BeatTracker(peephole=False, head="da2")`.
    """

    def get(name: str) -> np.ndarray:
        key = DA2_PREFIX + name
        if key not in state_dict:
            raise KeyError(f"state_dict has no {key!r}")
        return np.asarray(state_dict[key], np.float32)

    num_layers = sum(
        1
        for key in state_dict
        if key.startswith(DA2_PREFIX + "lstm.weight_ih_l") and not key.endswith("_reverse")
    )
    if num_layers == 0:
        raise KeyError(f"state_dict has no {DA2_PREFIX}lstm.* entries")
    params = {}
    for k in range(num_layers):
        directions = {}
        for direction, suffix in (("fwd", ""), ("bwd", "_reverse")):
            s = f"l{k}{suffix}"
            directions[direction] = {
                "input_kernel": get(f"lstm.weight_ih_{s}").T,
                "recurrent_kernel": get(f"lstm.weight_hh_{s}").T,
                "bias": get(f"lstm.bias_ih_{s}") + get(f"lstm.bias_hh_{s}"),
            }
        params[f"blstm_{k}"] = directions
    for name in ("feature_fc", "fc1"):
        params[name] = {"kernel": get(f"{name}.weight").T, "bias": get(f"{name}.bias")}
    return _variables(params)


def _variables(params) -> Variables:
    """`{"params": params}` with NumPy float32 leaves (`jax.tree.map` keeps them on the host)."""
    return {"params": jax.tree.map(lambda x: np.ascontiguousarray(x, np.float32), params)}
