"""Process plumbing the trainer and the run folder stand on: atomic writes (``atomic``),
checkpoints (``checkpoint``), 1..N processes (``distributed``), autocast (``devices``),
optimiser groups (``optim``), progress display (``progress``) and cache and shipped-file
paths (``paths``).

Import from the modules, e.g. ``from sbirbench.runtime import atomic``. Nothing here
imports the pipeline, the API or the command line.
"""
