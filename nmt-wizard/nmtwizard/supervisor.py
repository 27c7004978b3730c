"""``nmtwizard-supervisor POOL [POOL...]``: keep one worker per pool running.

A worker that exits is restarted after a back-off that doubles on each quick failure (1 s up to
60 s) and resets once a worker has run for ``healthy_after`` seconds. Exit code 55 (the pool
was told to stop) is final, as in nmt-wizard's runworker; so is SIGTERM/SIGINT to the supervisor,
which forwards it to the workers.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from nmtwizard import defaults

__all__ = ["Child", "Supervisor", "main"]

log = logging.getLogger("nmtwizard.supervisor")


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    backoff: float = 0.0
    restart_at: float = 0.0
    restarts: int = 0
    finished: bool = False


class Supervisor:
    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        healthy_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.children = [Child(name, argv) for name, argv in commands.items()]
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self.clock = clock
        self.stopping = False

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(child.argv)
        child.started = self.clock()
        log.info("started %s (pid %s)", child.name, child.process.pid)

    def step(self) -> None:
        """Start due children and notice exits; call repeatedly."""
        now = self.clock()
        for child in self.children:
            if child.finished:
                continue
            if child.process is None:
                if now >= child.restart_at and not self.stopping:
                    self._start(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            child.process = None
            if code == defaults.STOP_EXIT_CODE or self.stopping:
                log.info("%s stopped (exit %s); not restarting", child.name, code)
                child.finished = True
                continue
            ran = now - child.started
            if ran >= self.healthy_after:
                child.backoff = 0.0
            child.backoff = min(self.max_backoff, max(self.min_backoff, child.backoff * 2))
            child.restart_at = now + child.backoff
            child.restarts += 1
            log.warning(
                "%s exited with %s after %.1fs; restarting in %.1fs",
                child.name,
                code,
                ran,
                child.backoff,
            )

    def stop(self) -> None:
        self.stopping = True
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()

    def run(self, poll: float = 0.2) -> int:
        while not all(c.finished for c in self.children):
            self.step()
            if self.stopping and all(c.process is None for c in self.children):
                break
            time.sleep(poll)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nmtwizard-supervisor")
    parser.add_argument("pools", nargs="+", help="pools to run a worker for")
    parser.add_argument("--max-backoff", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    supervisor = Supervisor(
        {pool: [sys.executable, "-m", "nmtwizard.worker", pool] for pool in args.pools},
        max_backoff=args.max_backoff,
    )
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stop())
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
