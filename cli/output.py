"""Printing: JSON for scripts, tables and text for people, a spinner while waiting."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

__all__ = ["emit", "format_time", "print_json", "spinner", "table"]


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def emit(config, data: Any, human: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON under ``--json``, else through ``human``."""
    if config.json:
        print_json(data)
    else:
        human(data)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    align: Sequence[str] | None = None,
) -> str:
    """A boxed table, the reference README's style (``+----+`` borders)."""
    from tabulate import tabulate

    cells = [["" if v is None else v for v in row] for row in rows]
    return tabulate(
        cells,
        headers=list(headers),
        tablefmt="pretty",
        colalign=tuple(align) if align else None,
        disable_numparse=True,
    )


def format_time(value: float | None) -> str:
    if not value:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value)))


@contextlib.contextmanager
def spinner(message: str) -> Iterator[None]:
    """Spin on stderr while the body runs; silent when stderr is not a terminal."""
    stream = sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield
        return
    done = threading.Event()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            stream.write(f"\r{frame} {message}")
            stream.flush()
            if done.wait(0.1):
                break
        stream.write("\r" + " " * (len(message) + 2) + "\r")
        stream.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(1)
