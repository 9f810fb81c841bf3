"""Run a Python snippet in N gloo worker processes (free port, timeout) for tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

PRELUDE = """
import json, os, sys
import torch.distributed as dist
dist.init_process_group("gloo")
RANK, WORLD = dist.get_rank(), dist.get_world_size()
OUT = sys.argv[1]
def emit(payload):
    with open(f"{OUT}/rank{RANK}.json", "w") as handle:
        json.dump(payload, handle)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_workers(body: str, tmp_path: Path, world_size: int = 2, timeout: float = 120) -> list:
    """Run ``body`` (after PRELUDE) on ``world_size`` ranks; return each rank's ``emit``."""
    script = tmp_path / "worker.py"
    epilogue = "\ndist.barrier()\ndist.destroy_process_group()\n"
    script.write_text(PRELUDE + textwrap.dedent(body) + epilogue)
    port = free_port()
    procs = []
    for rank in range(world_size):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_RANK": str(rank),
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=timeout)
            outputs.append(out)
    finally:
        for proc in procs:
            proc.kill()
    for rank, proc in enumerate(procs):
        assert proc.returncode == 0, f"rank {rank} failed:\n{outputs[rank]}"
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world_size)]
