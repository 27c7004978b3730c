"""Small helpers shared by the test folders and the benchmarks."""

import socket
import threading
import time

import requests

__all__ = ["DEMO_TASK", "RedisFiller", "demo_session", "demo_task_runs", "free_port", "until"]

# An exec-mode launch (``content`` of /task/launch) that prints the GPUs it was given.
DEMO_TASK = {
    "docker": {
        "image": "nmtwizard/demo",
        "registry": "auto",
        "tag": "1",
        "command": ["sh", "-c", "echo gpus=$CUDA_VISIBLE_DEVICES; echo done"],
    },
    "exec_mode": True,
    "ngpus": 1,
}


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (free again once this returns)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_later(delay: float, action) -> threading.Thread:
    """Run ``action()`` in a daemon thread after ``delay`` seconds (join the returned thread)."""

    def run():
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def until(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
    """Poll ``predicate`` until it is truthy (its value), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def demo_session(base: str, password: str) -> requests.Session:
    """A session of the demo trainer ``DMTRN`` (``bootstrapdemo``) on the launcher at ``base``."""
    login = requests.get(f"{base}/auth/token", auth=("DMTRN", password), timeout=10)
    assert login.status_code == 200, login.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {login.json()['token']}"
    return session


def demo_task_runs(session: requests.Session, base: str, pool: str) -> None:
    """:data:`DEMO_TASK` launched on ``pool`` really runs on one GPU and completes."""
    launched = session.post(f"{base}/task/launch/{pool}", json=DEMO_TASK, timeout=30)
    assert launched.status_code == 200, launched.text
    task_id = launched.json().split("\t")[1]

    def stopped():
        task = session.get(f"{base}/task/status/{task_id}", timeout=10).json()
        return task if task["status"] == "stopped" else None

    task = until(stopped, 60, f"task {task_id} stopped", interval=0.3)
    assert task["message"] == "completed", task
    log = session.get(f"{base}/task/log/{task_id}", timeout=10).text
    assert log.startswith("COMMAND: sh -c ")
    assert "\ngpus=0\n" in log or "\ngpus=1\n" in log
    assert "\ndone\n" in log


class RedisFiller:
    """Fills a bounded Redis (``maxmemory``, ``noeviction``) of a test's own to its limit, and
    frees it again. Never point it at the shared test server: it changes ``maxmemory``."""

    KEY = "filler:{}"

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.count = 0

    def used(self) -> int:
        return self.client.info("memory")["used_memory"]

    def fill(self, headroom: int = 0) -> None:
        """Write values until Redis refuses one, smaller and smaller so that even a tiny write
        is refused; then set the limit ``headroom`` bytes above what is used, or 256 KiB below
        (connections opening and closing cannot then free the few bytes a write needs)."""
        import redis

        self.client.config_set("maxmemory", self.used() + (2 << 20))
        for size in (64 << 10, 1 << 10, 16):
            while True:
                try:
                    self.client.set(self.KEY.format(self.count), b"x" * size)
                except redis.exceptions.OutOfMemoryError:
                    break
                self.count += 1
        self.client.config_set("maxmemory", self.used() + (headroom or -(256 << 10)))

    def free(self) -> None:
        """Delete the filler and leave 64 MiB of room."""
        self.client.delete(*(self.KEY.format(i) for i in range(self.count)))
        self.client.config_set("maxmemory", self.used() + (64 << 20))
        self.count = 0
