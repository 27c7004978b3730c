"""The ``snw`` command-line client: talks to the launcher over HTTP only."""

import click

__all__ = ["cli"]

VERSION = "0.1.0"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="snw")
def cli() -> None:
    """SNW: launch and follow GPU training tasks on shared pools."""
