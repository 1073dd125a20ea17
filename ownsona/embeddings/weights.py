"""Map one tensor of a `.safetensors` file into memory read-only, without copying it.

Why not `safetensors.safe_open(...).get_tensor`: it copies the whole tensor onto the heap, so the
builtin model's 32,000 × 256 float16 table costs 16 MB of anonymous memory from the first second.
Mapped, its pages belong to the file: only the rows of tokens actually seen become resident, the
kernel can drop them under memory pressure and read them back, and the table is shared with every
other process that maps the same file (`ownsona import` next to a running server).

The format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N,
N bytes of JSON mapping each tensor name to its dtype, shape and [begin, end) byte offsets
relative to the end of the header, then the raw little-endian data.
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

# safetensors dtype names → NumPy little-endian dtypes (those a static model's table comes in).
DTYPES = {"F16": "<f2", "F32": "<f4"}
MAX_HEADER_BYTES = 100_000_000  # the format's own limit


class WeightsFormatError(ValueError):
    """The file is not a safetensors file holding the tensor as expected."""


def map_tensor(path: Path, name: str) -> np.ndarray:
    """The tensor `name` of the safetensors file at `path`, as a read-only array over a mapping."""
    with open(path, "rb") as file:
        (header_size,) = struct.unpack("<Q", _read_exactly(file, 8))
        if header_size > MAX_HEADER_BYTES:
            raise WeightsFormatError("the header is too large")
        header = json.loads(_read_exactly(file, header_size))
        entry = header.get(name) if isinstance(header, dict) else None
        if not isinstance(entry, dict):
            raise WeightsFormatError(f"no tensor named {name!r}")
        dtype_name = DTYPES.get(entry.get("dtype"))
        if dtype_name is None:
            raise WeightsFormatError(f"tensor {name!r} has an unsupported dtype")
        dtype = np.dtype(dtype_name)
        shape = tuple(int(n) for n in entry["shape"])
        begin, end = (int(n) for n in entry["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * dtype.itemsize or begin < 0:
            raise WeightsFormatError(f"tensor {name!r}: its offsets do not match its shape")
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)  # stays valid after close
    offset = 8 + header_size + begin
    if offset + count * dtype.itemsize > len(mapping):
        mapping.close()
        raise WeightsFormatError(f"tensor {name!r} runs past the end of the file")
    return np.frombuffer(mapping, dtype=dtype, count=count, offset=offset).reshape(shape)


def _read_exactly(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise WeightsFormatError("the file is truncated")
    return data
