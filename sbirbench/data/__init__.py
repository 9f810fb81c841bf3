"""From a data set plugin to tensors: samplers and loaders (``items``), image transforms
(``transforms``), same-class pairing of sketches and photos (``pairing``) and the on-disk
check behind ``sbirbench data check`` (``check``).

Import from the modules, e.g. ``from sbirbench.data.items import make_loader``. Data set
plugins themselves live in ``datasets/`` (installed as ``sbirbench.datasets``).
"""
