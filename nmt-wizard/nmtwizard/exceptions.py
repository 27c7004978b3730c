"""Errors raised by the engine, shared by every module that reports them."""

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the key and the source."""
