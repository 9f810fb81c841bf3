"""``sbirbench run --nproc N``: start N local workers with PyTorch's launcher
(``torch.distributed.run``); each runs the same ``run`` command under torchrun's
environment (:mod:`sbirbench.cli.worker`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from sbirbench.errors import UserError

from .worker import ENV


def launch(nproc: int, argv: Sequence[str]) -> None:
    """Run ``python -m sbirbench ARGV`` in ``nproc`` local workers with torch's launcher."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--module", "sbirbench.cli.worker"]
    )
    os.environ[ENV] = json.dumps(list(argv))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        run(args)
    except ChildFailedError as exc:
        raise UserError(describe_failures(exc.failures, nproc)) from None


def describe_failures(failures: dict[int, Any], nproc: int) -> str:
    """One line naming the failed ranks. A rank killed by a signal (the OOM killer, a
    scheduler, kill -9) leads: the others then fail only because their peer is gone."""
    failed = sorted(failures.items())
    killed = [f"rank {r} was killed by {f.signal_name()}" for r, f in failed if f.exitcode < 0]
    others = [f"rank {r}: exit code {f.exitcode}" for r, f in failed if f.exitcode >= 0]
    detail = f" ({', '.join(others)})" if others else ""
    if not killed:
        return f"{len(failed)} of {nproc} workers failed{detail}; their messages are above"
    then = f"; {len(others)} other worker(s) failed after it{detail}" if others else ""
    return f"{', '.join(killed)}{then}; the messages are above"
