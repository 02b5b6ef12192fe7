"""A tiny PNG writer for the fake ComfyUI: real 8-bit RGB PNGs of any size, derived from the seed.

Written by hand with zlib + struct (test code only, so the fake needs no Pillow). Each row is the seed's
random row rotated by a few bytes, so the image is far from blank yet compresses fast (rows repeat within
zlib's window). ``blank=True`` gives one flat colour, for the health check's "blank image" case.
"""

from __future__ import annotations

import random
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, seed: int, blank: bool = False,
              text: dict[str, str] | None = None) -> bytes:
    row_len = width * 3
    if blank:
        base = bytes((seed % 256, (seed >> 8) % 256, (seed >> 16) % 256)) * width
    else:
        base = random.Random(seed).randbytes(row_len)
    rows = []
    for y in range(height):
        shift = 0 if blank else (y * 3 * 7) % row_len
        rows.append(b"\x00" + base[shift:] + base[:shift])  # filter type 0 (None) per row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 (RGB)
    chunks = [_chunk(b"IHDR", ihdr)]
    for key, value in (text or {}).items():  # ComfyUI writes the prompt as tEXt chunks
        chunks.append(_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1", "replace")))
    chunks.append(_chunk(b"IDAT", zlib.compress(b"".join(rows), 1)))
    chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)
