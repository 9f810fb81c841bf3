"""One run, one direction. Each step takes what the previous one returned:

1. ``options``    :class:`RunOptions`, what the user asked for (CLI flags or API keywords)
2. ``resolve``    :func:`resolve` -> frozen :class:`RunSpec` (plugins, configs, protocol)
3. ``bind``       :func:`bind` -> :class:`BoundRun` (the data set, its fingerprint, the name
                  the result is recorded under)
4. ``store``      :class:`RunStore`, the run folder (paths, resume point, atomic writes)
5. ``trainer``    :class:`Trainer`, the training loop and its state
6. ``evaluation`` :func:`evaluate` -> :class:`Evaluation`
7. ``result``     :func:`make_result`, the one place result.json is built
8. ``execute``    the steps in order (:func:`execute`); ``saved``: :func:`evaluate_saved`

Nothing here imports the command line; the CLI and :mod:`sbirbench.api` call these.
"""
