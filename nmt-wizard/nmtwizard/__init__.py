"""SNW task engine (nmt-wizard re-created): Django-free, state in Redis."""

__version__ = "0.1.0"
