"""Read an earl checkpoint container (weights.zst, optim-RRRRR.zst) with
numpy and the zstd command, independently of earl's Go reader: the format
of docs/checkpoints.md.

    python3 read_earl.py FILE    prints, per array, buffer field length sha256(little-endian float32 bytes)
"""
import hashlib
import json
import struct
import subprocess
import sys

import numpy as np


def read_earl(path):
    """Returns (index, {(buffer, field): float32 array})."""
    b = open(path, "rb").read()
    magic, size = struct.unpack_from("<II", b, 0)
    assert magic == 0x184D2A5E and size == 16 and b[8:16] == b"EARLCKPT", "not an earl checkpoint file"
    assert struct.unpack_from("<I", b, 16)[0] == 1, "container version"
    n = struct.unpack_from("<Q", b, len(b) - 24)[0]
    assert b[-8:] == b"EARLCKPT", "no trailer: truncated"
    start = len(b) - 24 - n
    assert struct.unpack_from("<II", b, start - 8) == (0x184D2A5F, n + 24), "index frame header"
    idx = json.loads(b[start:len(b) - 24])
    off, per_block, out = 24, idx["block_bytes"] // 4, {}
    for buf in idx["buffers"]:
        for arr in buf["arrays"]:
            parts, left = [], buf["len"]
            for clen, _, _ in arr["blocks"]:
                # A block is one zstd frame per byte plane; zstd reads them as one stream.
                raw = subprocess.run(["zstd", "-dcq"], input=b[off:off + clen], capture_output=True, check=True).stdout
                k = min(per_block, left)
                off, left = off + clen, left - k
                assert len(raw) == 4 * k, "block size"
                if idx["shuffle"] == "byte4":  # planes of byte 0, 1, 2, 3 -> interleaved
                    raw = np.frombuffer(raw, np.uint8).reshape(4, k).T.copy()
                parts.append(np.frombuffer(raw, "<f4"))
            assert left == 0
            out[(buf["name"], arr["field"])] = np.concatenate(parts) if parts else np.zeros(0, "<f4")
    assert off == start - 8, "blocks do not cover the data"
    return idx, out


if __name__ == "__main__":
    _, arrays = read_earl(sys.argv[1])
    for (name, field), a in arrays.items():
        print(name, field, len(a), hashlib.sha256(a.astype("<f4").tobytes()).hexdigest())
