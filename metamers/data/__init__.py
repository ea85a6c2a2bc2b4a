"""Data shipped with the package: a held-out MNIST test subset (see README.md)."""
