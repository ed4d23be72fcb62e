"""BLSTM beat/downbeat tracker in flax.linen: madmom's RNNDownBeat networks and DA2's nodrum head.

Both trackers are 3 bidirectional LSTM layers (25 units per direction) over the 314-dim features
of `jdrum.beat.features` followed by a 3-class softmax head (REFERENCE §4.2):

* madmom (`peephole=True, head="madmom"`): LSTMs with peephole connections, one dense layer
  50→3. madmom averages the softmax outputs of 8 such networks (`ensemble`).
* DA2 nodrum (`peephole=False, head="da2"`): PyTorch LSTMs, `feature_fc` 50→25 then `fc1`
  25→3 with no nonlinearity in between.

Class order of every probability output here is DA2's: **[non-beat, downbeat, beat]**. madmom's
own output order is [non-beat, beat, downbeat]; `weights.load_madmom_downbeat_ensemble` permutes
the columns of madmom's output layer so that both weight sources share one order.

Variables of `BeatTracker` are `{"params": tree}` (what `init` returns and `apply` takes), with
the tree (I = input size: 314 for layer 0, 50 above; H = 25):

    blstm_{0,1,2}/{fwd,bwd}/input_kernel      (I, 4H)  gates [i | f | g | o]
                           /recurrent_kernel  (H, 4H)  gates [i | f | g | o]
                           /bias              (4H,)
                           /peephole          (3, H)   rows [i, f, o] (peephole=True only)
    output/{kernel (50, 3), bias (3,)}                  head="madmom"
    feature_fc/{kernel (50, 25), bias}, fc1/{kernel (25, 3), bias}   head="da2"

An ensemble is the same dict with a leading axis E (number of networks) on every leaf.

Mixed precision: `dtype=jnp.bfloat16` runs the LSTM matmuls and the dense head in bfloat16
(float32 parameters cast on use, float32 results); gates, cell states, logits and the softmax
stay float32. The default float32 is the reference computation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Variables = Any  # flax variables: {"params": parameter tree}

NUM_CLASSES = 3
NON_BEAT, DOWNBEAT, BEAT = 0, 1, 2  # DA2's class ids, the order of every probability output
HEADS = ("madmom", "da2")


class LSTMLayer(nn.Module):
    """Unidirectional LSTM over time (axis 1), zero initial state.

    Gates are fused in the order [i (input), f (forget), g (cell candidate), o (output)], the
    PyTorch order. Per step, with optional peepholes p_i, p_f, p_o (madmom's `LSTMLayer`):

        i = σ(x W_i + h U_i + p_i ⊙ c + b_i)        f = σ(x W_f + h U_f + p_f ⊙ c + b_f)
        g = tanh(x W_g + h U_g + b_g)               c' = f ⊙ c + i ⊙ g
        o = σ(x W_o + h U_o + p_o ⊙ c' + b_o)       h' = o ⊙ tanh(c')

    The input and forget peepholes see the previous cell state, the output peephole the new one.
    Without peepholes this is PyTorch's `nn.LSTM` cell (its two biases summed into `bias`).
    """

    hidden: int
    peephole: bool = False
    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST
    dtype: Any = jnp.float32  # matmul dtype; the gates and states stay float32

    @nn.compact
    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        """Runs the LSTM.

        Args:
          x_BxTxI: input sequence.

        Returns:
          h_BxTxH: hidden state after every step.
        """
        num_inputs, hidden = x_BxTxI.shape[-1], self.hidden
        init = nn.initializers.lecun_normal()
        input_kernel_Ix4H = self.param("input_kernel", init, (num_inputs, 4 * hidden))
        recurrent_kernel_Hx4H = self.param("recurrent_kernel", init, (hidden, 4 * hidden))
        bias_4H = self.param("bias", nn.initializers.zeros_init(), (4 * hidden,))
        peephole_3xH = (
            self.param("peephole", nn.initializers.zeros_init(), (3, hidden))
            if self.peephole
            else None
        )

        # The input projection of all steps at once; only the recurrent part is sequential.
        dtype = self.dtype
        xw_TxBx4H = jnp.einsum(
            "bti,ig->tbg",
            x_BxTxI.astype(dtype),
            input_kernel_Ix4H.astype(dtype),
            precision=self.precision,
        ).astype(jnp.float32) + bias_4H.reshape(1, 1, -1)
        recurrent_kernel_Hx4H = recurrent_kernel_Hx4H.astype(dtype)

        def step(carry, xw_Bx4H):
            h_BxH, c_BxH = carry
            hu_Bx4H = jnp.dot(h_BxH.astype(dtype), recurrent_kernel_Hx4H, precision=self.precision)
            z_Bx4H = xw_Bx4H + hu_Bx4H.astype(jnp.float32)
            zi, zf, zg, zo = jnp.split(z_Bx4H, 4, axis=-1)
            if peephole_3xH is not None:
                zi = zi + c_BxH * peephole_3xH[0][None]
                zf = zf + c_BxH * peephole_3xH[1][None]
            c_BxH = jax.nn.sigmoid(zf) * c_BxH + jax.nn.sigmoid(zi) * jnp.tanh(zg)
            if peephole_3xH is not None:
                zo = zo + c_BxH * peephole_3xH[2][None]
            h_BxH = jax.nn.sigmoid(zo) * jnp.tanh(c_BxH)
            return (h_BxH, c_BxH), h_BxH

        zeros_BxH = jnp.zeros((x_BxTxI.shape[0], hidden), xw_TxBx4H.dtype)
        _, h_TxBxH = jax.lax.scan(step, (zeros_BxH, zeros_BxH), xw_TxBx4H)
        return jnp.swapaxes(h_TxBxH, 0, 1)


class BiLSTM(nn.Module):
    """Bidirectional LSTM: forward pass and time-reversed backward pass, output [fwd | bwd]."""

    hidden: int
    peephole: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        """Returns h_BxTx2H = [forward H | backward H], both aligned with the input frames."""
        lstm = lambda name: LSTMLayer(self.hidden, self.peephole, dtype=self.dtype, name=name)
        fwd_BxTxH = lstm("fwd")(x_BxTxI)
        bwd_BxTxH = lstm("bwd")(x_BxTxI[:, ::-1])
        return jnp.concatenate([fwd_BxTxH, bwd_BxTxH[:, ::-1]], axis=-1)


class BeatTracker(nn.Module):
    """Stacked BLSTM + softmax head over beat classes [non-beat, downbeat, beat].

    Attributes:
      num_layers: BLSTM layers.
      hidden: LSTM units per direction.
      peephole: LSTMs with peephole connections (madmom) or without (PyTorch / DA2).
      head: "madmom" (one dense layer 2H→3) or "da2" (`feature_fc` 2H→H, then `fc1` H→3, no
        nonlinearity in between).
      dtype: compute dtype of the LSTM matmuls and dense layers (float32, or bfloat16 for
        mixed precision); parameters, states, logits and probabilities are float32 either way.
    """

    num_layers: int = 3
    hidden: int = 25
    peephole: bool = False
    head: str = "da2"
    dtype: Any = jnp.float32

    @nn.compact
    def embedding_and_logits(self, features_BxTxF: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Top BLSTM output and the head's logits.

        Args:
          features_BxTxF: madmom features (F = 314), 100 frames/s.

        Returns:
          embedding_BxTx2H: top BLSTM layer output (the "low" beat information).
          logits_BxTx3: over [non-beat, downbeat, beat]. For DA2 the `feature_fc` output is sown
            into "intermediates" as "feature_fc_out".
        """
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        h_BxTxD = features_BxTxF
        for layer in range(self.num_layers):
            h_BxTxD = BiLSTM(self.hidden, self.peephole, dtype=self.dtype, name=f"blstm_{layer}")(
                h_BxTxD
            )
        dense = lambda features, name: nn.Dense(
            features, precision=jax.lax.Precision.HIGHEST, dtype=self.dtype, name=name
        )
        if self.head == "madmom":
            return h_BxTxD, dense(NUM_CLASSES, "output")(h_BxTxD).astype(jnp.float32)
        fc_BxTxH = dense(self.hidden, "feature_fc")(h_BxTxD)
        self.sow("intermediates", "feature_fc_out", fc_BxTxH)
        return h_BxTxD, dense(NUM_CLASSES, "fc1")(fc_BxTxH).astype(jnp.float32)

    def __call__(self, features_BxTxF: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Runs the tracker.

        Args:
          features_BxTxF: madmom features (F = 314), 100 frames/s.

        Returns:
          embedding_BxTx2H: top BLSTM layer output (the "low" beat information).
          probabilities_BxTx3: softmax over [non-beat, downbeat, beat].
        """
        embedding_BxTxD, logits_BxTx3 = self.embedding_and_logits(features_BxTxF)
        return embedding_BxTxD, jax.nn.softmax(logits_BxTx3, axis=-1)

    def logits(self, features_BxTxF: jax.Array) -> jax.Array:
        """logits_BxTx3 over [non-beat, downbeat, beat] (for training losses)."""
        return self.embedding_and_logits(features_BxTxF)[1]

    def probabilities(self, features_BxTxF: jax.Array) -> jax.Array:
        """probabilities_BxTx3: softmax over [non-beat, downbeat, beat]."""
        return self(features_BxTxF)[1]


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """The sizes of a trained `BeatTracker` as a run's `config.model` gives them
    (`frozen.from_mapping`); trackers that jdrum trains have madmom's head."""

    num_layers: int = 3
    hidden: int = 25
    peephole: bool = True
    head: str = "madmom"
    dtype: str = "float32"  # compute dtype; runs before the field existed are float32

    def make(self) -> BeatTracker:
        return BeatTracker(**{**dataclasses.asdict(self), "dtype": jnp.dtype(self.dtype)})


def tracker_for(variables: Variables) -> BeatTracker:
    """The `BeatTracker` whose variables these are (one network or a stacked ensemble)."""
    params = variables["params"]
    lstm = params["blstm_0"]["fwd"]
    return BeatTracker(
        num_layers=sum(1 for name in params if name.startswith("blstm_")),
        hidden=lstm["recurrent_kernel"].shape[-2],
        peephole="peephole" in lstm,
        head="madmom" if "output" in params else "da2",
    )


def is_ensemble(variables: Variables) -> bool:
    """Whether `variables` holds stacked networks (a leading ensemble axis on every leaf)."""
    return variables["params"]["blstm_0"]["fwd"]["recurrent_kernel"].ndim == 3


def ensemble(
    model: BeatTracker, stacked_variables: Variables, features_BxTxF: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Runs E networks of one architecture and averages their softmax outputs.

    This is madmom's `average_predictions` (sum of the E probability arrays divided by E).

    Args:
      model: the architecture shared by the networks.
      stacked_variables: `{"params": tree}` with a leading axis E on every leaf.
      features_BxTxF: madmom features.

    Returns:
      embedding_ExBxTx2H: each network's top BLSTM output (they are not averaged: the networks'
        hidden units do not correspond).
      probabilities_BxTx3: average of the E softmax outputs, [non-beat, downbeat, beat].
    """
    apply = lambda variables: model.apply(variables, features_BxTxF)
    embedding_ExBxTxD, probabilities_ExBxTx3 = jax.vmap(apply)(stacked_variables)
    num_networks = probabilities_ExBxTx3.shape[0]
    return embedding_ExBxTxD, jnp.sum(probabilities_ExBxTx3, axis=0) / num_networks


@jax.jit
def track(variables: Variables, features_BxTxF: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Jitted, batched tracker for either weight source (architecture read from `variables`).

    Args:
      variables: `{"params": tree}` of one `BeatTracker` (e.g. `weights.da2_nodrum_params(...)`)
        or of a stacked ensemble (e.g. `weights.load_madmom_downbeat_ensemble()`).
      features_BxTxF: madmom features (`features.batch_features`).

    Returns:
      embedding: BxTx50 for one network, ExBxTx50 (every network's) for an ensemble.
      probabilities_BxTx3: softmax over [non-beat, downbeat, beat] (ensemble: averaged).
    """
    model = tracker_for(variables)
    features_BxTxF = jnp.asarray(features_BxTxF, jnp.float32)
    if is_ensemble(variables):
        return ensemble(model, variables, features_BxTxF)
    return model.apply(variables, features_BxTxF)


def beat_activations(probabilities_BxTx3: jax.Array) -> jax.Array:
    """[P(beat), P(downbeat)] columns, the activation pair madmom's DBN and DA2 use (BxTx2)."""
    return jnp.stack([probabilities_BxTx3[..., BEAT], probabilities_BxTx3[..., DOWNBEAT]], axis=-1)
