"""Drumless audio in, drum takes out: every stage of a run directory chained (DESIGN §1).

    pipe = Pipeline("runs/demo")                      # vqvae_*/, lm/, optional vocoder/
    result = pipe.accompany(audio, num_takes=4, seed=0)
    result.drums  # (4, L) float32 drum stems, level-matched to the input
    result.mix    # (4, L) input + drums, peak-limited to 0.99

A run directory (`jdrum.runs`) holds `vqvae_drums/`, `vqvae_drumless/`, the LM (`lm/` by
default), and optionally `vocoder/` (else Griffin-Lim) and `tracker.json` ({"tracker": NAME},
a name of `jdrum.runs.tracker` whose path, if relative, is relative to the run directory;
default "madmom", the tracker of the synthstems builds; `python -m jdrum.convert --official`
writes the DA2 tracker there).

Steps for an input of L samples (S = L // 1024 tokens; the last L mod 1024 samples get no
drums and are silent in the stem):

1. drumless codes: log-mel → drumless statistics → drumless VQ-VAE encoder → (S,) codes;
2. beat: the tracker on the whole input → low / mid / high conditions on the token grid;
3. drum codes: `jdrum.inference.sampling.generate` (windows with continuation for any S, a batch of
   takes); a take whose drums come out near-silent is re-sampled with a fresh key, up to
   `max_retries` times;
4. drum audio: drum VQ-VAE decoder → drum statistics → the run's vocoder, HiFi-GAN V1 or Vocos,
   whichever `vocoder/` holds (or Griffin-Lim: when the run has no `vocoder/`, or with
   `Pipeline(..., vocoder="griffin-lim")`);
5. level: each take is scaled to the input's RMS; the mix is input + drums, and mix and stem
   are scaled down together where the mix would exceed a peak of 0.99 (never clipped).

Priming ("continue my groove", `accompany(..., prime=drums, prime_at=seconds)`): the prime's
drum codes (drum VQ-VAE) are fixed at tokens round(prime_at · 44100 / 1024) onwards in every
take and the rest is sampled conditioned on them (`sampling.generate(fixed=...)`), so the drum
audio there is the decoded prime (blended with its neighbours over the decoder's and vocoder's
context) and the drums after it continue its style. A drum stem of the whole song keeps every
bar it covers.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from jdrum import audio, runs
from jdrum.beat import conditions, dbn
from jdrum.inference import sampling, vocode

VOCODERS = ("auto", "hifigan", "vocos", "griffin-lim")  # see `Pipeline`
# The `vocoder` name of each generator a vocoder run may hold (`runs.GENERATORS`).
VOCODER_KINDS = {"hifigan_v1": "hifigan", "vocos": "vocos"}
# How tables and messages name each `Pipeline.vocoder`.
VOCODER_NAMES = {"hifigan": "HiFi-GAN", "vocos": "Vocos", "griffin-lim": "Griffin-Lim"}

SILENT_DBFS = -45.0  # a take whose raw drum RMS is below this is re-sampled
PEAK = 0.99


@dataclasses.dataclass
class Accompaniment:
    """The result of `Pipeline.accompany` for one input."""

    drums: np.ndarray  # (K, L) float32 drum stems
    mix: np.ndarray  # (K, L) float32 input + drums
    codes: np.ndarray  # (K, S) int32 drum codes
    drumless_codes: np.ndarray  # (S,) int32
    beat: dict  # the input's conditions {"low", "mid", "high"}, tracker outputs and "beats"
    gains_db: np.ndarray  # (K,) gain applied to each raw drum take
    retries: list[int]  # re-samplings of each take (near-silent takes)
    silent: list[bool]  # takes still near-silent after the retries
    primed: tuple[int, int] | None = None  # [start, end) tokens fixed to the prime's codes


def prime_tokens(num_samples: int, prime_samples: int, prime_at: float) -> tuple[int, int]:
    """[start, end) tokens a prime of `prime_samples` samples covers from `prime_at` seconds
    in an input of `num_samples` samples: start = round(prime_at · 44100 / 1024), and the prime's
    tokens are its whole 1024-sample hops.

    Raises:
      ValueError: (one line) a prime shorter than one token, `prime_at` negative or outside the
        input, or a prime running past the input's end.
    """
    seconds = num_samples / audio.SAMPLE_RATE
    prime_seconds = prime_samples / audio.SAMPLE_RATE
    count = conditions.num_tokens(prime_samples)
    if count < 1:
        raise ValueError(
            f"the prime of {prime_samples} samples is shorter than one token"
            f" ({conditions.TOKEN_HOP} samples)"
        )
    if not prime_at >= 0:
        raise ValueError(f"prime_at must be at least 0 seconds, got {prime_at}")
    start = round(prime_at * audio.SAMPLE_RATE / conditions.TOKEN_HOP)
    song_tokens = conditions.num_tokens(num_samples)
    if start >= song_tokens:
        raise ValueError(f"prime_at {prime_at} s is outside the song ({seconds:.2f} s)")
    if start + count > song_tokens:
        raise ValueError(
            f"the prime ({prime_seconds:.2f} s) from {prime_at} s runs past the end of the song"
            f" ({seconds:.2f} s)"
        )
    return start, start + count


def dbfs(x) -> np.ndarray:
    """RMS level in dB relative to full scale, over the last axis."""
    return 20 * np.log10(np.sqrt(np.mean(np.square(x), axis=-1)) + 1e-12)


class Pipeline:
    """The stages of a run directory, loaded once (see the module docstring)."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        lm_dir: str = "lm",
        tracker: str | None = None,
        vocoder: str = "auto",
    ):
        """`vocoder`: one of `VOCODERS`: "auto" (the run's `vocoder/`, whichever generator it
        holds, if it has one, else Griffin-Lim), "hifigan" or "vocos" (the run's, which must
        exist and be of that kind) or "griffin-lim". `self.vocoder` is what is used: "hifigan",
        "vocos" or "griffin-lim".

        Raises:
          FileNotFoundError: a stage folder is missing, or "hifigan"/"vocos" without a trained
            `vocoder/`.
          ValueError: an unknown `vocoder`, or one that is not the kind of the run's.
        """
        self.run_dir = os.fspath(run_dir)
        if vocoder not in VOCODERS:
            raise ValueError(f"vocoder must be one of {', '.join(VOCODERS)}, got {vocoder!r}")
        for part in (*runs.VQVAE_DIRS.values(), lm_dir):
            if not os.path.isdir(os.path.join(self.run_dir, part)):
                raise FileNotFoundError(f"{self.run_dir}: no {part}/ (not a complete run)")
        self.has_vocoder = vocoder != "griffin-lim" and runs.has_vocoder(self.run_dir)
        self.vocoder = self._vocoder_kind() if self.has_vocoder else "griffin-lim"
        if vocoder in VOCODER_KINDS.values():
            if not self.has_vocoder:
                raise FileNotFoundError(
                    f"{self.run_dir}: no trained vocoder/ (vocoder={vocoder!r})"
                )
            if self.vocoder != vocoder:
                raise ValueError(
                    f"{self.run_dir}: vocoder/ is a {VOCODER_NAMES[self.vocoder]} vocoder, not"
                    f" {VOCODER_NAMES[vocoder]} (vocoder={vocoder!r}; 'auto' uses it)"
                )
        self.codecs = {
            stem: runs.load_codec(os.path.join(self.run_dir, directory))
            for stem, directory in runs.VQVAE_DIRS.items()
        }
        self.lm_dir = lm_dir
        self.lm, self.lm_variables, self.lm_config = runs.load_lm(
            os.path.join(self.run_dir, lm_dir)
        )
        self.sampling = sampling.SamplingConfig(**self.lm_config.sampling.to_dict())
        self.tracker_name = tracker or runs.run_tracker_name(self.run_dir)
        self.tracker = dataclasses.replace(runs.tracker(self.tracker_name), batch_size=1)

    def sampling_config(self, **overrides) -> sampling.SamplingConfig:
        """The LM run's sampling settings (`config.sampling`) with `overrides` (SamplingConfig
        fields; None values are ignored).

        Raises:
          ValueError: a bad value, or guidance for an LM trained without dropped conditions.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        config = dataclasses.replace(self.sampling, **given)
        self._check_guidance(config)
        return config

    def _check_guidance(self, config: sampling.SamplingConfig) -> None:
        if config.guidance != 1 and not any(runs.condition_drops(self.lm_config)):
            raise ValueError(
                f"{os.path.join(self.run_dir, self.lm_dir)}: guidance {config.guidance:g} needs"
                " an LM trained with dropped conditions (config.train.drop_beat, drop_drumless"
                " or drop_both > 0); this one never saw a missing condition"
            )

    def _vocoder_kind(self) -> str:
        """The kind of the run's `vocoder/` generator: "hifigan" or "vocos"."""
        name = runs.vocoder_generator(os.path.join(self.run_dir, runs.VOCODER_DIR))
        return VOCODER_KINDS[name]

    # --------------------------------------------------------------------------- stages

    def codes(self, x_L: np.ndarray, stem: str = "drumless") -> np.ndarray:
        """(S,) codes of a signal (its first S·1024 samples) from the `stem` VQ-VAE."""
        usable = conditions.num_tokens(len(x_L)) * conditions.TOKEN_HOP
        codes = self.codecs[stem].encode(jnp.asarray(x_L[None, :usable]))
        return np.asarray(codes[0], np.int32)

    def beat(self, x_L: np.ndarray) -> dict:
        """The tracker's outputs on the whole signal, its beats (madmom's default DBN,
        `dbn.decode`) and the three condition levels (the high level from the LM's
        `high_dbn`)."""
        embedding, probabilities = self.tracker(np.asarray(x_L, np.float32)[None])
        beats = dbn.decode(probabilities[0])
        high_dbn = self.lm.config.high_dbn
        levels = conditions.beat_conditions(
            embedding[0],
            probabilities[0],
            len(x_L),
            high_dbn,
            beats if high_dbn == "madmom" else None,
        )
        return {
            **levels,
            "embedding": embedding[0],
            "probabilities": probabilities[0],
            "beats": beats,
        }

    def round_trip(
        self, drums_L: np.ndarray, vqvae: bool = True, vocoder: str | None = None
    ) -> np.ndarray:
        """(L,) a drum stem through the drum VQ-VAE and the vocoder, at the stem's level: the
        best this run's codes and audio can sound. `vqvae=False` vocodes the stem's own log-mel
        instead (the vocoder alone); `vocoder` "griffin-lim" uses Griffin-Lim whatever the
        run's vocoder is (None: `self.vocoder`)."""
        drums_L = np.asarray(drums_L, np.float32)
        usable = conditions.num_tokens(len(drums_L)) * conditions.TOKEN_HOP
        if vqvae:
            mel = self.codecs["drums"].decode(jnp.asarray(self.codes(drums_L, "drums")[None]))
        else:
            mel = audio.log_mel(jnp.asarray(drums_L[None, :usable]))
        raw = np.zeros_like(drums_L)
        decoded = self.mel_audio(np.asarray(mel), vocoder)[0]
        raw[: len(decoded)] = decoded[: len(drums_L)]
        return raw * (10 ** ((dbfs(drums_L) - dbfs(raw)) / 20)).astype(np.float32)

    def mel_audio(self, mel_BxMxT: np.ndarray, vocoder: str | None = None) -> np.ndarray:
        """(B, T·256) raw audio of log10 drum mels by the run's vocoder, or by Griffin-Lim when
        `vocoder` is "griffin-lim" or the pipe has no neural vocoder."""
        if vocoder not in (None, "griffin-lim", self.vocoder):
            raise ValueError(f"{self.run_dir}: no {vocoder!r} vocoder (it has {self.vocoder})")
        neural = self.has_vocoder and vocoder != "griffin-lim"
        return vocode.vocode(mel_BxMxT, self.run_dir if neural else None)

    def drum_audio(self, codes_KxS: np.ndarray) -> np.ndarray:
        """(K, S·1024) raw drum audio of drum codes (decoder, statistics, vocoder)."""
        return self.mel_audio(np.asarray(self.codecs["drums"].decode(jnp.asarray(codes_KxS))))

    def sample_codes(
        self, drumless_codes, beat, num_takes: int, key, config=None, progress=None, fixed=None
    ):
        """(K, S) drum codes (see `jdrum.inference.sampling.generate`; `fixed`: (S,) codes
        kept as given, `sampling.FREE` where sampled).

        Raises:
          ValueError: guidance (`config.guidance` ≠ 1) with an LM trained without dropped
            conditions (`runs.condition_drops`), or bad inputs (`sampling.generate`).
        """
        config = config or self.sampling
        self._check_guidance(config)
        level = self.lm.config.beat
        return sampling.generate(
            self.lm,
            self.lm_variables,
            drumless=drumless_codes,
            beat=None if level == "none" else beat[level],
            num_tokens=len(drumless_codes),
            num_takes=num_takes,
            key=key,
            config=config,
            on_window=progress,
            fixed=fixed,
        )

    # ------------------------------------------------------------------------ everything

    def accompany(
        self,
        x_L: np.ndarray,
        *,
        num_takes: int = 1,
        seed: int = 0,
        config: sampling.SamplingConfig | None = None,
        max_retries: int = 2,
        progress=None,
        prime: np.ndarray | None = None,
        prime_at: float = 0.0,
    ) -> Accompaniment:
        """Drum takes for a drumless signal (float32 mono 44.1 kHz, at least 1024 samples).

        Args:
          x_L: the input.
          num_takes: takes sampled in one batch.
          seed: PRNG seed (same seed, same takes).
          config: sampling settings (default: the LM run's `config.sampling`).
          max_retries: re-samplings of a near-silent take.
          progress: called as progress(stage, done, total) (e.g. to drive a progress bar).
          prime: drum audio (float32 mono 44.1 kHz, at least 1024 samples) whose drum codes are
            kept in every take from `prime_at`, the rest continuing it (module docstring).
          prime_at: where the prime starts in the input, in seconds.

        Raises:
          ValueError: an input shorter than one token, a silent prime or a bad prime position
            (`prime_tokens`).
        """
        x_L = np.asarray(x_L, np.float32)
        num_tokens = conditions.num_tokens(len(x_L))
        if num_tokens < 1:
            raise ValueError(f"input of {len(x_L)} samples is shorter than one token (1024)")
        fixed = primed = None
        if prime is not None:
            prime = np.asarray(prime, np.float32)
            primed = prime_tokens(len(x_L), len(prime), prime_at)
            if not np.any(prime):
                raise ValueError("the prime is silent (every sample is zero)")
        report = progress or (lambda *args: None)
        report("codes", 0, 1)
        drumless_codes = self.codes(x_L)
        if primed is not None:
            fixed = np.full(num_tokens, sampling.FREE, np.int32)
            fixed[slice(*primed)] = self.codes(prime, "drums")
            if (fixed != sampling.FREE).all():
                max_retries = 0  # nothing left to sample
        report("beat", 0, 1)
        beat = self.beat(x_L)
        key = jax.random.key(seed)
        key, sub = jax.random.split(key)
        report("sampling", 0, 1)
        codes = self.sample_codes(
            drumless_codes, beat, num_takes, sub, config,
            lambda i, n, _: report("sampling", i + 1, n), fixed,
        )  # fmt: skip
        report("vocoding", 0, 1)
        raw = self.drum_audio(codes)
        retries = [0] * num_takes
        for take in range(num_takes):
            while dbfs(raw[take]) < SILENT_DBFS and retries[take] < max_retries:
                key, sub = jax.random.split(key)
                again = self.sample_codes(drumless_codes, beat, 1, sub, config, fixed=fixed)
                codes[take] = again[0]
                raw[take] = self.drum_audio(codes[take : take + 1])[0]
                retries[take] += 1
        silent = [bool(dbfs(r) < SILENT_DBFS) for r in raw]
        drums, mix, gains = level_match(x_L, raw)
        return Accompaniment(
            drums, mix, codes, drumless_codes, beat, gains, retries, silent, primed
        )


def level_match(x_L: np.ndarray, raw_KxM: np.ndarray):
    """Scales each raw take to the input's RMS and mixes it in without clipping.

    Returns:
      (drums (K, L), mix (K, L), gains_db (K,)): the stems are padded with silence to L; where
      a mix would peak above 0.99, stem and mix are scaled down together.
    """
    num_takes, length = raw_KxM.shape[0], len(x_L)
    raw = np.zeros((num_takes, length), np.float32)
    raw[:, : min(length, raw_KxM.shape[1])] = raw_KxM[:, :length]
    target = np.sqrt(np.mean(np.square(x_L))) + 1e-12
    level = np.sqrt(np.mean(np.square(raw), axis=1, keepdims=True)) + 1e-12
    gains = np.minimum(target / level, 10 ** (40 / 20))  # never boost silence by more than 40 dB
    drums = raw * gains
    mix = x_L[None] + drums
    peak = np.max(np.abs(mix), axis=1, keepdims=True)
    scale = np.minimum(1.0, PEAK / np.maximum(peak, 1e-12))
    drum_peak = np.max(np.abs(drums), axis=1, keepdims=True)
    scale = np.minimum(scale, PEAK / np.maximum(drum_peak, 1e-12))
    gains_db = 20 * np.log10(gains[:, 0] * scale[:, 0])
    return (drums * scale).astype(np.float32), (mix * scale).astype(np.float32), gains_db
