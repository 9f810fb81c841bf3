"""Built-in data sets of sbirbench, installed as ``sbirbench.datasets``."""
