"""Mapping a safetensors tensor: equal to what the reference library reads, read-only, and strict."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from ownsona.embeddings.builtin import TENSOR_KEY, locate_model_files
from ownsona.embeddings.weights import WeightsFormatError, map_tensor


def write_raw(path: Path, header: dict[str, object], data: bytes) -> Path:
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


def test_the_installed_model_maps_equal_to_the_reference_reader() -> None:
    weights = locate_model_files().weights
    mapped = map_tensor(weights, TENSOR_KEY)
    expected = load_file(str(weights))[TENSOR_KEY]
    assert mapped.dtype == expected.dtype == np.float16
    assert np.array_equal(mapped, expected)
    assert not mapped.flags.writeable  # the model file can never be changed through the array


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_a_file_written_by_safetensors_maps_back_equal(tmp_path: Path, dtype: type) -> None:
    table = np.arange(24, dtype=dtype).reshape(6, 4) / 7
    other = np.ones((3, 5), dtype=np.float32)
    path = tmp_path / "t.safetensors"
    save_file({"other": other, "table": table}, str(path))
    assert np.array_equal(map_tensor(path, "table"), table)
    assert np.array_equal(map_tensor(path, "other"), other)


def test_a_missing_tensor_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_file({"table": np.zeros((2, 2), dtype=np.float16)}, str(path))
    with pytest.raises(WeightsFormatError, match="no tensor named 'embedding.weight'"):
        map_tensor(path, "embedding.weight")


def test_an_unsupported_dtype_is_refused(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.safetensors", {"t": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}},
                     bytes(8))
    with pytest.raises(WeightsFormatError, match="unsupported dtype"):
        map_tensor(path, "t")


def test_offsets_that_disagree_with_the_shape_are_refused(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.safetensors", {"t": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 6]}},
                     bytes(8))
    with pytest.raises(WeightsFormatError, match="offsets do not match its shape"):
        map_tensor(path, "t")


def test_a_tensor_running_past_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "t.safetensors", {"t": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}},
                     bytes(4))
    with pytest.raises(WeightsFormatError, match="runs past the end"):
        map_tensor(path, "t")


@pytest.mark.parametrize("content", [b"", b"\x05\x00", struct.pack("<Q", 50) + b"{}"])
def test_a_truncated_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "t.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsFormatError, match="truncated"):
        map_tensor(path, "t")
