"""A reader of W&B's offline run file (``run-<id>.wandb``), for the tracker tests.

wandb writes its records as protobuf messages in LevelDB's log format: a 7-byte file
header, then 32 KiB blocks of chunks, each with a 7-byte header (CRC32, length, type:
1 whole, 2 first, 3 middle, 4 last). wandb no longer ships a reader of its own.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7
WHOLE, LAST = 1, 4


def records(path: Path) -> list[bytes]:
    """The serialised records of a ``.wandb`` file, in order."""
    raw = path.read_bytes()
    assert raw[:4] == b":W&B", f"{path} is not a W&B run file"
    found, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(raw):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + HEADER])
        if length == 0 and kind == 0:
            pos += left
            continue
        pending += raw[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (WHOLE, LAST):
            found.append(pending)
            pending = b""
    return found


def _items(items: Any) -> dict[str, Any]:
    """Key-value items; a key with slashes may be stored as its parts (``nested_key``)."""
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def read_run(path: Path) -> dict[str, Any]:
    """The config, the history rows and the final summary of a W&B offline run."""
    from wandb.proto import wandb_internal_pb2 as proto

    run: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "kinds": []}
    for data in records(path):
        record = proto.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        run["kinds"].append(kind)
        if kind == "run":
            run["id"] = record.run.run_id
            run["config"].update(_items(record.run.config.update))
        elif kind == "config":
            run["config"].update(_items(record.config.update))
        elif kind == "history":
            run["history"].append(_items(record.history.item))
        elif kind == "summary":
            run["summary"].update(_items(record.summary.update))
    return run
