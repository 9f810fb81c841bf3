"""Using a trained run: search a photo folder with a sketch (``searcher``: ``sbirbench
index`` and ``sbirbench search``) and the drawing demo in the browser (``demo``).

Import from the modules, e.g. ``from sbirbench.search.searcher import Searcher``.
"""
