"""What a run leaves and how runs are compared: the typed :class:`Result` and result files
(``result``), leaderboard rows and boards (``rows``, built by ``leaderboard``), their
rendering as text (``tables``), statistics over seeds and queries (``stats``), paired
comparisons (``paired``) and published-against-reproduced tables (``reference``).

Import from the modules, e.g. ``from sbirbench.results.result import Result`` (also
``sbirbench.Result``). Nothing here imports the pipeline or the command line.
"""
