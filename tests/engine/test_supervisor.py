"""Supervisor: restarts crashed workers with a growing back-off; exit code 55 is final."""

import sys
import time

from nmtwizard.supervisor import Supervisor


def test_crashing_worker_is_restarted_with_backoff():
    supervisor = Supervisor(
        {"crash": [sys.executable, "-c", "raise SystemExit(1)"]},
        min_backoff=0.05,
        max_backoff=0.2,
        healthy_after=60,
    )
    child = supervisor.children[0]
    backoffs = []
    deadline = time.monotonic() + 5
    while child.restarts < 4 and time.monotonic() < deadline:
        supervisor.step()
        if (
            child.process is None
            and child.backoff
            and (not backoffs or backoffs[-1] != child.restarts)
        ):
            backoffs.append(child.restarts)
        time.sleep(0.01)
    assert child.restarts >= 4
    assert child.backoff == 0.2  # 0.05, 0.1, 0.2, capped at 0.2
    supervisor.stop()


def test_stop_exit_code_is_not_restarted():
    supervisor = Supervisor(
        {"stop": [sys.executable, "-c", "raise SystemExit(55)"]}, min_backoff=0.01
    )
    assert supervisor.run(poll=0.01) == 0
    assert supervisor.children[0].finished and supervisor.children[0].restarts == 0
