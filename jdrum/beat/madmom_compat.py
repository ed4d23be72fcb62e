"""The one place that makes madmom 0.16.1 import and run on Python >= 3.10 and NumPy >= 2.

madmom 0.16.1 (the last release) was written for Python 3.5-3.9 and NumPy < 1.20. On today's
stack it fails in five ways, each fixed here without editing madmom's installed files:

1. `from collections import MutableSequence` (the ABC aliases left `collections` in 3.10):
   the aliases are put back on `collections`.
2. NumPy aliases removed in 1.24 / 2.x (`np.float`, `np.int`, `np.complex`, `np.object`,
   `np.str`) and `np.in1d` (removed in 2.4): put back as the builtins / `np.isin`. These are
   process-wide attributes of `numpy`; no NumPy code reads them, they only exist for madmom.
3. `import pkg_resources` in `madmom/__init__.py` (gone with setuptools >= 81) and
   `from distutils.version import LooseVersion` (gone with Python 3.12): minimal stand-ins
   are provided only while madmom is imported, when the real ones are missing.
4. `DBNDownBeatTrackingProcessor.process` builds `np.asarray(results)` from (path, log_prob)
   tuples of different lengths, an error ("inhomogeneous shape") since NumPy 1.24: the
   module-level HMM helper it maps is replaced by one that returns each pair as a length-2
   object array, which stacks into an (n, 2) object array exactly as old NumPy did.

Everything in jdrum imports madmom through this module:

    from jdrum.beat.madmom_compat import madmom
    proc = madmom.features.downbeats.RNNDownBeatProcessor()
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import importlib.metadata
import re
import sys
import types
import warnings

import numpy as np

_COLLECTIONS_ABCS = (
    "Callable",
    "Iterable",
    "Mapping",
    "MutableMapping",
    "MutableSequence",
    "MutableSet",
    "Sequence",
    "Set",
)

# Only aliases that NumPy removed; `np.bool` is back in NumPy 2 as `np.bool_` and stays as is.
_NUMPY_ALIASES = {"float": float, "int": int, "complex": complex, "object": object, "str": str}


def _in1d(ar1, ar2, assume_unique=False, invert=False):
    """`np.in1d` as NumPy < 2.4 defined it: a flat `np.isin`."""
    return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)


def _patch_collections() -> None:
    for name in _COLLECTIONS_ABCS:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def _patch_numpy() -> None:
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)
    if "in1d" not in np.__dict__:
        np.in1d = _in1d


class _LooseVersion:
    """The part of `distutils.version.LooseVersion` madmom uses: ordering of dotted versions."""

    def __init__(self, version: str):
        self.version = [int(p) if p.isdigit() else p for p in re.split(r"[.\-+]", str(version))]

    def _key(self, other):
        other = other if isinstance(other, _LooseVersion) else _LooseVersion(other)
        width = max(len(self.version), len(other.version))
        pad = lambda v: (
            [(0, p) if isinstance(p, int) else (1, p) for p in v] + [(0, 0)] * (width - len(v))
        )
        return pad(self.version), pad(other.version)

    def __lt__(self, other):
        mine, theirs = self._key(other)
        return mine < theirs

    def __eq__(self, other):
        mine, theirs = self._key(other)
        return mine == theirs


def _stand_in_modules() -> dict[str, types.ModuleType]:
    """Modules madmom imports that this Python may lack, keyed by name."""
    modules = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pkg_resources  # noqa: F401
    except ImportError:
        pkg = types.ModuleType("pkg_resources")
        pkg.get_distribution = lambda name: types.SimpleNamespace(
            version=importlib.metadata.version(name)
        )
        modules["pkg_resources"] = pkg
    try:
        from distutils.version import LooseVersion  # noqa: F401
    except ImportError:
        distutils = types.ModuleType("distutils")
        version = types.ModuleType("distutils.version")
        version.LooseVersion = _LooseVersion
        distutils.version = version
        modules.update({"distutils": distutils, "distutils.version": version})
    return modules


@contextlib.contextmanager
def _temporarily_installed(modules: dict[str, types.ModuleType]):
    """Puts `modules` into `sys.modules` for the duration of the block only."""
    added = [name for name in modules if name not in sys.modules]
    sys.modules.update({name: modules[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def _process_dbn(process_tuple):
    """madmom's `_process_dbn`, returning (path, log_prob) as a length-2 object array."""
    hmm, observations = process_tuple
    path, log_prob = hmm.viterbi(observations)
    pair = np.empty(2, dtype=object)
    pair[0], pair[1] = path, log_prob
    return pair


def _import_madmom() -> types.ModuleType:
    _patch_collections()
    _patch_numpy()
    with _temporarily_installed(_stand_in_modules()), warnings.catch_warnings():
        # pkg_resources warns that it is deprecated each time it is imported.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        import madmom as mm
        import madmom.audio  # noqa: F401
        import madmom.features  # noqa: F401
        import madmom.features.beats  # noqa: F401
        import madmom.features.downbeats  # noqa: F401
        import madmom.ml.nn  # noqa: F401
    mm.features.downbeats._process_dbn = _process_dbn
    return mm


madmom = _import_madmom()

__all__ = ["madmom"]
