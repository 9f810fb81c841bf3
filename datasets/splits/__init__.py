"""Class lists of the standard splits, shipped as text files (one class per line)."""
