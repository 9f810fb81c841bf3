"""Built-in methods of sbirbench, installed as ``sbirbench.methods``."""
