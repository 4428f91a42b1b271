"""Read PyTorch's *legacy* (pre-1.6, non-zip) ``torch.save`` format with pickle + numpy only.

The library must not depend on torch at run time, yet the default weights ship as a legacy
``.pth``. The layout of such a file is::

    pickle(magic number) pickle(protocol version) pickle(sys info)
    pickle(state dict)            # tensors: persistent ids ('storage', type, key, loc, size)
    pickle(list of storage keys)  # the order in which raw storages follow
    for each key: <int64 little-endian element count> <element bytes>

Unpickling is restricted to an allow-list of globals (see ``_Unpickler.find_class``), so a
hostile file cannot make us import or call arbitrary code; anything else is rejected.
Only floating-point tensors are returned (as float32): integer buffers such as BatchNorm's
``num_batches_tracked`` carry no inference information.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["TorchLegacyFormatError", "load_legacy_state_dict"]

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_ZIP_MAGIC = b"PK\x03\x04"

_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TorchLegacyFormatError(ValueError):
    """The file is not a readable legacy ``torch.save`` checkpoint."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype[Any]


@dataclass
class _Storage:
    dtype: np.dtype[Any]
    numel: int
    data: NDArray[Any] | None = None


@dataclass(frozen=True)
class _TensorRef:
    # Tensors are materialised only after all raw storages have been read, because in this
    # format the storage bytes come *after* the pickle that references them.
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> NDArray[Any]:
        data = self.storage.data
        if data is None:
            raise TorchLegacyFormatError("tensor refers to a storage missing from the file")
        if not self.size:
            return np.array(data[self.offset])
        itemsize = data.itemsize
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if min(self.size) > 0 and last >= data.size:
            raise TorchLegacyFormatError("tensor view exceeds its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view, copy=True)


class _StateDict(dict[str, Any]):
    # A plain dict has no __dict__, but torch pickles ``state_dict._metadata`` via BUILD.
    pass


def _rebuild_tensor_v2(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: _TensorRef, *_: Any) -> _TensorRef:
    return data


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): _StateDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, stream: IO[bytes]) -> None:
        # latin1: torch's legacy pickles were often written by Python 2.
        super().__init__(stream, encoding="latin1")
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise TorchLegacyFormatError(
                f"refusing to unpickle {module}.{name}: not part of a plain tensor state dict"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise TorchLegacyFormatError(f"unsupported persistent id {pid!r}")
        storage_type, key, _location, numel, view = (*pid[1:], None)[:5]
        if not isinstance(storage_type, _StorageType):
            raise TorchLegacyFormatError(f"unknown storage type {storage_type!r}")
        if view is not None:
            raise TorchLegacyFormatError("storage views are not supported")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(storage_type.dtype, int(numel))
        return storage


def _load_header_pickle(stream: IO[bytes]) -> Any:
    # Header values are plain ints/dicts; an Unpickler with no allowed globals suffices.
    return _Unpickler(stream).load()


def load_legacy_state_dict(path: str | Path) -> dict[str, NDArray[np.float32]]:
    """Return the floating-point tensors of a legacy ``torch.save`` state dict as float32."""
    path = Path(path)
    with path.open("rb") as stream:
        head = stream.read(4)
        if head == _ZIP_MAGIC:
            raise TorchLegacyFormatError(
                f"{path} uses the zip-based torch.save format (torch >= 1.6); only the legacy "
                "format is supported - re-save it with _use_new_zipfile_serialization=False"
            )
        stream.seek(0)
        try:
            magic = _load_header_pickle(stream)
            if magic != _MAGIC_NUMBER:
                raise TorchLegacyFormatError("bad magic number")
            if _load_header_pickle(stream) != _PROTOCOL_VERSION:
                raise TorchLegacyFormatError("unsupported protocol version")
            sys_info = _load_header_pickle(stream)
            if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
                raise TorchLegacyFormatError("only little-endian checkpoints are supported")
            unpickler = _Unpickler(stream)
            state = unpickler.load()
            keys = _load_header_pickle(stream)
            _read_storages(stream, keys, unpickler.storages)
        except TorchLegacyFormatError as exc:
            raise TorchLegacyFormatError(
                f"{path} is not a legacy PyTorch checkpoint: {exc}"
            ) from exc
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, struct.error) as exc:
            raise TorchLegacyFormatError(
                f"{path} is not a legacy PyTorch checkpoint ({type(exc).__name__}: {exc})"
            ) from exc
    if not isinstance(state, dict):
        raise TorchLegacyFormatError(f"{path} does not contain a state dict")
    out: dict[str, NDArray[np.float32]] = {}
    for name, value in state.items():
        if isinstance(value, _TensorRef) and value.storage.dtype.kind == "f":
            out[str(name)] = value.materialise().astype(np.float32)
    return out


def _read_storages(stream: IO[bytes], keys: Any, storages: dict[str, _Storage]) -> None:
    if not isinstance(keys, list):
        raise TorchLegacyFormatError("missing storage key list")
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise TorchLegacyFormatError(f"storage {key!r} is not referenced by the state dict")
        (numel,) = struct.unpack("<q", stream.read(8))
        nbytes = numel * storage.dtype.itemsize
        raw = stream.read(nbytes)
        if numel != storage.numel or len(raw) != nbytes:
            raise TorchLegacyFormatError(f"storage {key!r} is truncated or inconsistent")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
