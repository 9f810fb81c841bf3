"""``python -m sbirbench`` (also what torchrun workers run)."""

from sbirbench.cli import main

if __name__ == "__main__":
    main()
