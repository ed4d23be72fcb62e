"""jdrum: audio-domain drum accompaniment in JAX/Flax (a JukeDrummer reimplementation)."""

__version__ = "0.1.0"
