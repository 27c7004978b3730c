"""The ``snw`` command-line client: talks to the launcher over HTTP only."""

__all__ = ["VERSION"]

VERSION = "0.1.0"
