"""A restricted unpickler for the original's pickled transform dicts (``*_ioxfm_*.npy``).

Only the globals those files use are allowed: numpy array/scalar/dtype reconstructors (under
both ``numpy.core`` and ``numpy._core``), ``collections.OrderedDict`` and torch tensor
rebuilders, with ``torch.storage._load_from_bytes`` replaced by a ``weights_only=True`` load.
Anything else (a crafted ``os.system`` payload, say) is refused before it can run.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
from typing import Any

import numpy as np

from .errors import KrakenError


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global that is not on the allow-list."""


def _load_storage_from_bytes(b: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")


def _allowed(module: str, name: str) -> Any:
    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
        import numpy._core.multiarray as ma

        return getattr(ma, name)
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    if module in ("numpy.dtypes",) and name.endswith("DType"):
        return getattr(np.dtypes, name)
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
        import torch._utils

        return getattr(torch._utils, name)
    if module == "torch.storage" and name == "_load_from_bytes":
        return _load_storage_from_bytes
    if module == "torch" and name in ("FloatStorage", "DoubleStorage", "LongStorage", "IntStorage"):
        import torch

        return _bounded_storage(getattr(torch, name))
    if module == "builtins" and name in ("set", "frozenset", "complex", "slice"):
        import builtins

        return getattr(builtins, name)
    raise UnsafePickleError(f"refusing to load {module}.{name}")


#: The most bytes a storage built from a size (not from data in the file) may allocate. Such storages
#: hold no data of the file; a legacy transform has no reason to ask for more.
MAX_EMPTY_STORAGE_BYTES = 64 << 20

#: The most objects a loaded pickle may reach, counting shared references every time they are met:
#: a small file whose containers share one another many times over would make any walk over it endless.
MAX_REACHABLE = 2_000_000


class PickleTooLargeError(pickle.UnpicklingError):
    """The pickle asks for more memory, or a larger object graph, than its bytes could hold."""


def _bounded_storage(cls: Any) -> Any:
    itemsize = {"FloatStorage": 4, "DoubleStorage": 8, "LongStorage": 8, "IntStorage": 4}[cls.__name__]

    def make(*args: Any) -> Any:
        if args and isinstance(args[0], int) and (args[0] < 0 or args[0] * itemsize > MAX_EMPTY_STORAGE_BYTES):
            raise PickleTooLargeError(f"a {cls.__name__} of {args[0]:,} elements ({args[0] * itemsize:,} bytes) "
                                      "that the file holds no data for")
        return cls(*args)

    return make


def _check_reachable(obj: Any) -> None:
    """Walk containers (shared ones again each time) and stop past :data:`MAX_REACHABLE` objects."""
    stack, seen = [obj], 0
    while stack:
        o = stack.pop()
        seen += 1
        if seen > MAX_REACHABLE:
            raise PickleTooLargeError(f"more than {MAX_REACHABLE:,} nested objects (containers that share one "
                                      "another); a transform dict holds a few arrays")
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _allowed(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing persistent ids")


def safe_unpickle(data: bytes, *, source: str, error: type[KrakenError]) -> Any:
    """Unpickle ``data`` with the allow-list, raising ``error`` (naming ``source``) on anything else."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
        _check_reachable(obj)
        return obj
    except PickleTooLargeError as exc:
        raise error(f"{source} is not a plausible pickled dict: {exc}",
                    hint="the file is corrupt or crafted; it was not loaded") from exc
    except UnsafePickleError as exc:
        raise error(f"{source} contains code that would run when loaded ({exc}); it was not loaded",
                    hint="only load files from people you trust; kraken never executes code from data files") from exc
    except Exception as exc:
        raise error(f"{source} is not a readable pickled dict ({type(exc).__name__}: {exc})",
                    hint="the file may be truncated or corrupt") from exc


def load_pickled_npy(raw: bytes, *, source: str, error: type[KrakenError]) -> Any:
    """The object held by a ``np.save(path, obj)`` file (a 0-d object array), loaded safely."""
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except Exception as exc:
        raise error(f"{source} is not a .npy file ({exc})", hint="the file may be truncated or corrupt") from exc
    if dtype != np.dtype(object):
        # refuse a header that declares more data than the file holds before numpy allocates it
        need = math.prod(int(d) for d in shape) * dtype.itemsize
        have = len(raw) - f.tell()
        if need > have:
            raise error(f"{source} declares an array of shape {shape} ({need:,} bytes) but holds only {have:,} bytes",
                        hint="the file may be truncated or corrupt")
        f.seek(0)
        return np.load(f, allow_pickle=False)
    if shape != ():
        raise error(f"{source} holds an object array of shape {shape}, expected a pickled dict")
    return safe_unpickle(f.read(), source=source, error=error)
