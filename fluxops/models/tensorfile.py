"""Read and sanity-check a safetensors header without loading any tensor.

Written by hand on purpose: the `safetensors` package would pull in numpy/torch to do more than needed,
and fluxops must check files that are truncated or hostile without trusting them. The format is 8 bytes of
little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
"__metadata__": {...}}, then the data. A well-formed file has size == 8 + N + max(end).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors reference implementation's own limit
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


class NotSafetensors(ValueError):
    """The file is not a well-formed safetensors file; the message says why in user terms."""


@dataclass(frozen=True)
class TensorSummary:
    tensors: int
    header_bytes: int
    data_bytes: int
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def read_summary(path: Path) -> TensorSummary:
    """Parse and check the header of ``path``; raise NotSafetensors with the reason."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        head = fh.read(8)
        if len(head) < 8:
            raise NotSafetensors(f"only {len(head)} bytes: too small to be safetensors")
        if head.startswith(_PICKLE_MAGIC):
            raise NotSafetensors("a pickle/PyTorch checkpoint, not safetensors: refused (it can run code)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > MAX_HEADER_BYTES or header_len > size - 8:
            raise NotSafetensors(f"header length {header_len} is impossible for a {size}-byte file "
                                 "(truncated, or not safetensors at all)")
        raw = fh.read(header_len)
    return check_header(raw, size)


def check_header(raw: bytes, size: int) -> TensorSummary:
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotSafetensors(f"header is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise NotSafetensors("header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    data_size = size - 8 - len(raw)
    max_end = 0
    by_dtype: dict[str, int] = {}
    for name, info in header.items():
        if not isinstance(info, dict):
            raise NotSafetensors(f"tensor {name!r}: entry is not an object")
        offsets, dtype, shape = info.get("data_offsets"), info.get("dtype"), info.get("shape")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise NotSafetensors(f"tensor {name!r}: bad data_offsets")
        begin, end = offsets
        if not 0 <= begin <= end:
            raise NotSafetensors(f"tensor {name!r}: data_offsets {offsets} are reversed or negative")
        if end > data_size:
            raise NotSafetensors(f"tensor {name!r} ends at {end}, past the end of the data ({data_size} bytes): "
                                 "the file is truncated")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise NotSafetensors(f"tensor {name!r}: bad shape")
        if not isinstance(dtype, str):
            raise NotSafetensors(f"tensor {name!r}: bad dtype")
        width = DTYPE_BYTES.get(dtype)
        if width is not None and math.prod(shape) * width != end - begin:
            raise NotSafetensors(f"tensor {name!r}: {dtype}{shape} needs {math.prod(shape) * width} bytes, "
                                 f"the file gives it {end - begin}")
        by_dtype[dtype] = by_dtype.get(dtype, 0) + (end - begin)
        max_end = max(max_end, end)
    if max_end != data_size:
        raise NotSafetensors(f"{data_size - max_end} bytes after the last tensor: size is not 8 + header + data "
                             "(wrong file, or bytes appended)")
    meta = {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    return TensorSummary(tensors=len(header), header_bytes=len(raw), data_bytes=max_end,
                         bytes_by_dtype=by_dtype, metadata=meta)
