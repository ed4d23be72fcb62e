"""Audio I/O, the log-mel front end and clip slicing shared by every jdrum stage.

Audio is 44,100 Hz mono float32 in [-1, 1] everywhere (DESIGN §3). `log_mel` is the single mel
implementation: pure `jnp`, usable inside `jax.jit`, numerically the reference's `Audio2Mel`
(REFERENCE §1.3). Clip slicing and the silence test follow REFERENCE §1.2 and §1.4, with the
silence threshold corrected to the log10 scale (REFERENCE §10.7).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import soundfile

SAMPLE_RATE = 44_100
PCM16_SCALE = 32_768.0
# The reference's "-8" was meant for a natural-log mel; the same level on its log10 mel.
SILENCE_THRESHOLD_LOG10 = -8.0 / math.log(10.0)


class AudioError(ValueError):
    """Audio that cannot be used; the message is one line naming the file and the problem."""


@dataclasses.dataclass(frozen=True)
class SpectrogramConfig:
    """STFT / mel geometry shared by the data builders, the models and the losses."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024  # also the (periodic Hann) window length
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None  # None: sample_rate / 2
    log_floor: float = 1e-5  # log10(max(mel, floor))

    @property
    def pad(self) -> int:
        """Reflect padding on each side: (n_fft - hop) / 2, so frame j is centred on 256 j + 128."""
        return (self.n_fft - self.hop_length) // 2

    def num_frames(self, num_samples: int) -> int:
        """Mel frames for a signal of `num_samples` samples."""
        return max(0, (num_samples + 2 * self.pad - self.n_fft) // self.hop_length + 1)


DEFAULT_SPECTROGRAM = SpectrogramConfig()


# ----------------------------------------------------------------------------------- I/O


def load(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, allow_silent: bool = False):
    """Reads an audio file as mono float32 at `sample_rate`.

    wav (16/24/32-bit integer or float), flac, ogg and mp3 (libsndfile), and m4a/AAC and the other
    formats FFmpeg decodes (PyAV), at any rate and channel count are read; channels are averaged
    and the signal resampled. If the absolute peak exceeds 1 the signal is
    divided by its peak (REFERENCE §1.1), otherwise its level is kept.

    Args:
      path: the audio file.
      sample_rate: output rate in Hz.
      allow_silent: return all-zero audio instead of raising (e.g. for a silent stem).

    Returns:
      (num_samples,) float32 array.

    Raises:
      AudioError: missing, unreadable, empty, non-finite or (unless allowed) silent input.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        data, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        reason = getattr(error, "error_string", None) or str(error).splitlines()[0]
        decoded = _decode_with_ffmpeg(path)  # m4a/AAC and what else libsndfile cannot read
        if decoded is None:
            raise AudioError(f"{path}: not a readable audio file ({reason})") from None
        data, file_rate = decoded
    if data.size == 0:
        raise AudioError(f"{path}: contains no samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    audio = data.mean(axis=1, dtype=np.float32)
    if file_rate != sample_rate:
        audio = resample(audio, file_rate, sample_rate)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0.0 and not allow_silent:
        raise AudioError(f"{path}: is silent (every sample is zero)")
    if peak > 1.0:
        audio = audio / peak
    return audio.astype(np.float32, copy=False)


def _decode_with_ffmpeg(path: str) -> tuple[np.ndarray, int] | None:
    """((n, channels) float32, rate) of the first audio stream of a file that FFmpeg's
    decoders (PyAV) read, or None where they do not (or PyAV is not installed)."""
    try:
        import av  # PyAV: FFmpeg's demuxers and decoders, in its wheels
    except ImportError:
        return None
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            planar = av.AudioResampler(format="fltp")  # float32, (channels, n) per frame
            chunks = [
                out.to_ndarray()
                for frame in container.decode(stream)
                for out in planar.resample(frame)
            ]  # fmt: skip
            rate = stream.codec_context.sample_rate
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    if not chunks or not rate:
        return None
    return np.ascontiguousarray(np.concatenate(chunks, axis=1).T, np.float32), int(rate)


def resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality) of a mono float signal."""
    import librosa  # imported lazily: librosa's import is slow and only this needs it

    out = librosa.resample(
        np.asarray(audio, np.float32), orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq"
    )
    return out.astype(np.float32, copy=False)


def save(path: str | os.PathLike, audio, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16"):
    """Writes mono audio; the format follows the file extension (wav, flac, ogg, mp3).

    Samples are clipped to [-1, 1] first, so a full-scale sample never wraps around
    (REFERENCE §10.6).

    Raises:
      AudioError: the audio holds NaN or infinite values.
    """
    path = os.fspath(path)
    audio = np.asarray(audio, np.float32)
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    extension = os.path.splitext(path)[1].lower()
    if extension in (".ogg", ".mp3"):
        subtype = None  # lossy formats pick their own encoding
    soundfile.write(path, np.clip(audio, -1.0, 1.0), sample_rate, subtype=subtype)


def to_pcm16(audio) -> np.ndarray:
    """float audio in [-1, 1] -> int16 PCM (x 32768, rounded, clipped)."""
    scaled = np.round(np.asarray(audio, np.float64) * PCM16_SCALE)
    return np.clip(scaled, -PCM16_SCALE, PCM16_SCALE - 1).astype(np.int16)


def from_pcm16(pcm):
    """int16 PCM -> float32 audio (/ 32768). Works on NumPy and jax arrays, inside jit too."""
    return pcm.astype(np.float32) / PCM16_SCALE


# ----------------------------------------------------------------------------------- mel


@functools.lru_cache(maxsize=8)
def mel_filters(config: SpectrogramConfig = DEFAULT_SPECTROGRAM) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float64 Slaney mel basis with Slaney area normalisation."""
    import librosa

    return librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        htk=False,
        norm="slaney",
        dtype=np.float64,
    )


@functools.lru_cache(maxsize=8)
def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _frames(x_BxL: jax.Array, n_fft: int, hop: int) -> jax.Array:
    """Frames (..., F, n_fft) of a padded signal, F = (L - n_fft) // hop + 1, without a gather
    when the hop divides n_fft (the reference geometry)."""
    num_frames = (x_BxL.shape[-1] - n_fft) // hop + 1
    if n_fft % hop:
        idx_FxN = hop * np.arange(num_frames)[:, None] + np.arange(n_fft)[None, :]
        return x_BxL[..., idx_FxN]
    ratio = n_fft // hop
    num_blocks = num_frames + ratio - 1
    blocks = x_BxL[..., : num_blocks * hop].reshape(*x_BxL.shape[:-1], num_blocks, hop)
    return jnp.concatenate([blocks[..., i : i + num_frames, :] for i in range(ratio)], axis=-1)


def log_mel(audio, config: SpectrogramConfig = DEFAULT_SPECTROGRAM) -> jax.Array:
    """log10 mel spectrogram of the reference front end (REFERENCE §1.3).

    Reflect-pad (n_fft - hop) / 2 on both sides, periodic-Hann STFT without centring,
    magnitude, Slaney mel basis, log10(max(mel, 1e-5)). Pure jnp: works under `jax.jit` and
    `jax.vmap`; 2**20 samples give (80, 4096).

    The computation runs in float32, or in float64 for float64 input when `jax_enable_x64` is
    on. In float32 the STFT resolves about 7 decimal digits of a frame's energy, so mel bins
    more than ~120 dB below a frame's loudest bin and within two decades of the 1e-5 floor
    carry rounding noise of up to ~2e-3 (log10); every other bin matches the float64 reference
    to 1e-4.

    Args:
      audio: (..., num_samples) float audio.
      config: the spectrogram geometry.

    Returns:
      (..., n_mels, num_samples // hop), float32 (float64 for float64 input under x64).
    """
    return jnp.log10(jnp.maximum(mel_magnitude(audio, config), config.log_floor))


def mel_magnitude(
    audio, config: SpectrogramConfig = DEFAULT_SPECTROGRAM, magnitude_eps: float = 0.0
) -> jax.Array:
    """Linear mel spectrogram: `log_mel` before the floor and the log.

    Args:
      audio: (..., num_samples) float audio.
      config: the spectrogram geometry.
      magnitude_eps: added under the square root of the STFT magnitude, sqrt(re² + im² + eps)
        (HiFi-GAN's loss mel uses 1e-9, which keeps the gradient finite at silence); 0 takes
        the plain magnitude, as the reference front end does.

    Returns:
      (..., n_mels, num_samples // hop), float32 (float64 for float64 input under x64).
    """
    magnitude_BxFxK = stft_magnitude(audio, config, magnitude_eps)
    return jnp.einsum(
        "...fk,mk->...mf",
        magnitude_BxFxK,
        jnp.asarray(mel_filters(config), magnitude_BxFxK.dtype),
        precision=jax.lax.Precision.HIGHEST,
    )


def stft_magnitude(
    audio, config: SpectrogramConfig = DEFAULT_SPECTROGRAM, magnitude_eps: float = 0.0
) -> jax.Array:
    """STFT magnitude of the front end's framing: reflect-pad (n_fft - hop) / 2 on both sides,
    periodic-Hann frames without centring; `magnitude_eps` as in `mel_magnitude`.

    Returns:
      (..., num_samples // hop, n_fft // 2 + 1), float32 (float64 for float64 input under x64).
    """
    x_BxL = jnp.asarray(audio)
    dtype = jnp.promote_types(x_BxL.dtype, jnp.float32)
    x_BxL = x_BxL.astype(dtype)
    pad = config.pad
    x_BxL = jnp.pad(x_BxL, [(0, 0)] * (x_BxL.ndim - 1) + [(pad, pad)], mode="reflect")
    frames_BxFxN = _frames(x_BxL, config.n_fft, config.hop_length)
    window = jnp.asarray(_periodic_hann(config.n_fft), dtype)
    frames_BxFxN = frames_BxFxN * window.reshape((1,) * (frames_BxFxN.ndim - 1) + (-1,))
    spectrum_BxFxK = jnp.fft.rfft(frames_BxFxN, axis=-1)
    if magnitude_eps:
        power_BxFxK = jnp.square(spectrum_BxFxK.real) + jnp.square(spectrum_BxFxK.imag)
        return jnp.sqrt(power_BxFxK + magnitude_eps)
    return jnp.abs(spectrum_BxFxK)


# ------------------------------------------------------------------- normalisation stats


@dataclasses.dataclass(frozen=True)
class MelStats:
    """Per-bin mean and population std of log-mel frames (REFERENCE §1.6)."""

    mean: np.ndarray  # (n_mels,)
    std: np.ndarray  # (n_mels,); a zero-variance bin has std 1

    def _per_bin(self, values, mel):
        return values.reshape((1,) * (mel.ndim - 2) + (-1, 1))

    def normalise(self, mel):
        """(..., n_mels, frames) -> (mel - mean) / std, for NumPy or jax arrays."""
        return (mel - self._per_bin(self.mean, mel)) / self._per_bin(self.std, mel)

    def denormalise(self, mel):
        """Inverse of `normalise`."""
        return mel * self._per_bin(self.std, mel) + self._per_bin(self.mean, mel)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {"mean": np.asarray(self.mean), "std": np.asarray(self.std)}

    @classmethod
    def from_dict(cls, d) -> MelStats:
        mean = np.asarray(d["mean"], np.float32).reshape(-1)
        std = np.asarray(d["std"], np.float32).reshape(-1)
        return cls(mean=mean, std=std)


# Statistics pass through jit as arrays (e.g. `jdrum.models.codec`).
jax.tree_util.register_dataclass(MelStats, data_fields=["mean", "std"], meta_fields=[])


class MelStatsAccumulator:
    """Running per-bin mean/variance over frames (Chan et al. merge, float64).

    Feed it batches of (..., n_mels, frames) mels with `update`; `result()` gives `MelStats`.
    Equal to the reference's incremental StandardScaler over all training frames.
    """

    def __init__(self, n_mels: int = DEFAULT_SPECTROGRAM.n_mels):
        self.count = 0
        self.mean = np.zeros(n_mels, np.float64)
        self.m2 = np.zeros(n_mels, np.float64)

    def update(self, mel) -> None:
        mel = np.asarray(mel, np.float64)
        frames_NxM = np.moveaxis(mel, -2, -1).reshape(-1, mel.shape[-2])
        n = frames_NxM.shape[0]
        if n == 0:
            return
        batch_mean = frames_NxM.mean(axis=0)
        batch_m2 = ((frames_NxM - batch_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + batch_m2 + delta**2 * (self.count * n / total)
        self.count = total

    def result(self) -> MelStats:
        if self.count == 0:
            raise ValueError("no frames were given to compute mel statistics")
        std = np.sqrt(self.m2 / self.count)
        std = np.where(std == 0.0, 1.0, std)
        return MelStats(mean=self.mean.astype(np.float32), std=std.astype(np.float32))


# ---------------------------------------------------------------------- clip slicing


def fixed_clip_starts(num_samples: int, clip_length: int, hop_length: int) -> np.ndarray:
    """Start samples of fixed windows: every `hop_length` samples while a whole clip fits.

    The paper's setting is clip 2**20 with hop 2**19 (50 % overlap); audio after the last whole
    window is dropped.
    """
    if clip_length <= 0 or hop_length <= 0:
        raise ValueError(f"clip and hop lengths must be positive: {clip_length}, {hop_length}")
    return np.arange(0, num_samples - clip_length + 1, hop_length, dtype=np.int64)


def downbeat_clip_starts(
    downbeats_s,
    num_samples: int,
    clip_length: int,
    sample_rate: int = SAMPLE_RATE,
    min_gap_s: float | None = None,
) -> np.ndarray:
    """Start samples of downbeat-aligned clips, the reference's segmentation (REFERENCE §1.2).

    The first clip starts at the first downbeat; later downbeats are skipped until one lies more
    than `min_gap_s` after the current start, then a clip is cut at the current start and that
    downbeat becomes the next start. Audio after the last such downbeat is dropped, so clips
    never overlap.

    Args:
      downbeats_s: downbeat times in seconds, increasing.
      num_samples: length of the song; clips that would run past it are dropped.
      clip_length: clip length in samples.
      sample_rate: audio rate.
      min_gap_s: the gap; the reference uses 24 s for 2**20-sample clips. None: the clip duration.
    """
    gap = clip_length / sample_rate if min_gap_s is None else min_gap_s
    downbeats = np.asarray(downbeats_s, np.float64).reshape(-1)
    starts = []
    if downbeats.size:
        current = downbeats[0]
        for downbeat in downbeats[1:]:
            if downbeat - current > gap:
                starts.append(int(round(current * sample_rate)))
                current = downbeat
    starts = np.asarray(starts, np.int64)
    return starts[(starts >= 0) & (starts + clip_length <= num_samples)]


def is_silent(mel, threshold: float = SILENCE_THRESHOLD_LOG10) -> bool:
    """The reference's clip filter with the log10-corrected threshold (REFERENCE §1.4, §10.7).

    True if the (n_mels, F) log10 mel holds NaN, or more than F // 2 frames have a mean over the
    mel bins below `threshold`.
    """
    mel = np.asarray(mel)
    if np.isnan(mel).any():
        return True
    frame_means = mel.mean(axis=-2)
    return int(np.sum(frame_means < threshold)) > mel.shape[-1] // 2
