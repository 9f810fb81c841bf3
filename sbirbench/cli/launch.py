"""``sbirbench run --nproc N``: start N local workers with PyTorch's launcher
(``torch.distributed.run``); each runs the same ``run`` command under torchrun's
environment (:mod:`sbirbench.cli.worker`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

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
        codes = sorted({failure.exitcode for failure in exc.failures.values()})
        raise UserError(
            f"{len(exc.failures)} of {nproc} workers failed (exit code "
            f"{', '.join(map(str, codes))}); their message is above"
        ) from None
