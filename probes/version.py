"""The kit's version, in one place (the package facade and the activation store's metadata read it)."""

__version__ = "0.1.0"
