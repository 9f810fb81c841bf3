"""What a benchmark measures: ``benchmarks.toml`` and its suites (``benchmarks``, with the
protocol options table parsed by ``options``), and the test-set protocols that reshape a
data set: generalised zero-shot (``gzs``), cross-data-set (``cross``) and the validation
split (``validation``), with the class-name normaliser they share (``classnames``).

Import from the modules, e.g. ``from sbirbench.protocol.benchmarks import
load_benchmarks``. A new protocol is a module here plus its options in ``options``
(docs/architecture.md).
"""
