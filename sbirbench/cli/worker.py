"""Entry point of workers started by ``sbirbench run --nproc N``.

The command line travels in ``SBIRBENCH_WORKER_ARGV`` (JSON) rather than as torchrun
script arguments, which torchrun's own argument parser would also inspect.
"""

import json
import os

from sbirbench.cli import main

ENV = "SBIRBENCH_WORKER_ARGV"

if __name__ == "__main__":
    main(json.loads(os.environ[ENV]))
