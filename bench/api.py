"""Throughput and latency of the task API under gunicorn (issue 7).

Run::

    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/api.py [--tasks 100000]

It starts gunicorn on 127.0.0.1 (a free port) with a throw-away SQLite database in a temporary
directory, creates entity ``AA`` with a trainer, a fake pool ``aa_pool``, seeds ``--tasks``
queued tasks through the engine's store (in batches), then drives 8 concurrent clients
(``--clients``) against ``task/status``, ``task/list`` (50 of the seeded tasks, by entity
scope and by id prefix), ``service/list`` and ``task/launch``, printing requests/s, p50 and
p99 per route and the server's resident memory (master + workers). Meanwhile ``--followers``
(50) clients follow a task's log as ``snw log -f`` does (long polls, ``wait=30``), so the
figures are those of a server holding idle followers (issue 14). gunicorn runs with the
image's settings (``docker/gunicorn.conf.py``: gthread workers). The Redis database must be
empty (or the test suite's); it is flushed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port  # noqa: E402

TEST_MARKER = "snw:test-suite-database"


def _setup_environment(tmp: Path, redis_url: str) -> dict:
    config_dir = tmp / "config"
    config_dir.mkdir()
    (config_dir / "default.json").write_text((ROOT / "nmt-wizard/config/default.json").read_text())
    pool = {
        "name": "aa_pool",
        "description": "bench pool",
        "service": "fake",
        "variables": {
            "server_pool": [
                {"name": f"h{i}", "gpus": list(range(8)), "ncpus": 32} for i in range(8)
            ],
            "fake": {"duration": 3600},
        },
    }
    (config_dir / "aa_pool.json").write_text(json.dumps(pool))
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "snw_site.settings.base",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "CONFIG_DIR": str(config_dir),
        "LOG_LEVEL": "WARNING",
        "SNW_VAR_DIR": str(tmp),
    }


def _prepare(env: dict, tasks: int) -> str:
    """Migrate, create the trainer, seed tasks; return a token (runs Django in this process)."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from accounts import services
    from accounts.models import User
    from accounts.tokens import temporary_token_create
    from tasks_api.engine import get_engine

    call_command("migrate", verbosity=0)
    entity = services.entity_create(actor=None, entity_code="AA", name="Bench")
    user = User.objects.create_user(entity=entity, user_code="TRN", password="bench-password-1")
    services.role_assign(actor=None, role=entity.roles.get(name="trainer"), user=user)
    engine = get_engine()
    store = engine.store
    now = time.time()
    batch = []
    for i in range(tasks):
        task_id = f"AATRN_xxyy_Bench_01_{uuid.uuid4().hex}"
        batch.append(
            {
                "id": task_id,
                "type": "train",
                "pool": "aa_pool",
                "entity": "AA",
                "user": "AATRN",
                "trainer_id": "AATRN",
                "priority": 0,
                "ngpus": 1,
                "ncpus": 2,
                "iteration": 1,
                "content": {
                    "docker": {"image": "nmtwizard/x", "tag": "v1", "command": ["train"]},
                    "options": {},
                },
                "launched_time": now + i * 1e-4,
                "queue_score": i,
            }
        )
        if len(batch) == 1000:
            store.create_tasks(batch)
            batch = []
    if batch:
        store.create_tasks(batch)
    return temporary_token_create(user=user, duration=3600).token


def _drive(base: str, token: str, method: str, path: str, body, clients: int, seconds: float):
    import requests

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = session.request(method, base + path, json=body, timeout=60)
            mine.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / wall, statistics.median(latencies), p99, len(latencies), errors[0]


class Followers:
    """``count`` clients long-polling one task's log (``wait=30``) until :meth:`stop`."""

    def __init__(self, base: str, token: str, task_id: str, count: int):
        self.base, self.token, self.task_id = base, token, task_id
        self.answers = self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._follow, daemon=True) for _ in range(count)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _follow(self) -> None:
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        offset = 0
        while not self._stop.is_set():
            url = f"{self.base}/task/log/{self.task_id}?offset={offset}&wait=30"
            try:
                response = session.get(url, timeout=90)
                ok = response.status_code == 200
                offset = int(response.headers.get("X-Log-Offset", offset)) if ok else offset
            except requests.RequestException:
                ok = False
            with self._lock:
                self.answers += ok
                self.errors += not ok

    def stop(self) -> None:
        self._stop.set()


def _rss(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=100, help="gunicorn threads per worker")
    parser.add_argument(
        "--followers", type=int, default=50, help="idle log followers attached throughout"
    )
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        print("REDIS_URL is required (an empty database, e.g. redis://127.0.0.1:6379/9)")
        return 2
    import redis

    client = redis.Redis.from_url(redis_url)
    if client.dbsize() and not client.exists(TEST_MARKER):
        print(f"{redis_url} is not empty; point REDIS_URL at an empty database")
        return 2
    client.flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="snw-bench-"))
    env = _setup_environment(tmp, redis_url)
    seeded = time.monotonic()
    token = _prepare(env, args.tasks)
    print(f"seeded {args.tasks} tasks in {time.monotonic() - seeded:.1f}s")
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "snw_site.wsgi:application",
            "--config",
            "docker/gunicorn.conf.py",
            "--access-logfile",
            os.devnull,
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(args.workers),
            "GUNICORN_THREADS": str(args.threads),
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/status", timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    except Exception:
        server.terminate()
        client.flushdb()
        raise
    try:
        listing = requests.get(
            f"{base}/task/list/-*?limit=1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).json()
        some_task = listing[0]["task_id"]
        launch = {
            "docker": {"image": "nmtwizard/x", "tag": "v1", "command": ["train"]},
            "ngpus": 1,
        }
        routes = [
            ("task/status", "GET", f"/task/status/{some_task}", None),
            ("task/list (entity scope)", "GET", "/task/list/-*?limit=50", None),
            ("task/list (id prefix)", "GET", "/task/list/AATRN*?limit=50", None),
            ("service/list", "GET", "/service/list", None),
            ("task/launch", "POST", "/task/launch/aa_pool", launch),
        ]
        followers = Followers(base, token, some_task, args.followers)
        followers.start()
        print(
            f"gunicorn {args.workers} workers x {args.threads} threads, {args.clients} clients, "
            f"{args.seconds:.0f}s per route, {args.tasks} tasks, {args.followers} log followers"
        )
        print(
            f"{'route':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}"
        )
        for name, method, path, body in routes:
            rate, p50, p99, count, errors = _drive(
                base, token, method, path, body, args.clients, args.seconds
            )
            print(
                f"{name:26} {rate:8.1f} {p50 * 1000:8.1f} {p99 * 1000:8.1f} {count:9d} {errors:7d}"
            )
        print(f"server RSS (master + workers): {_rss(server.pid):.0f} MiB")
        followers.stop()
        print(
            f"log followers: {args.followers} attached throughout, "
            f"{followers.answers} long polls answered, {followers.errors} errors"
        )
    finally:
        server.send_signal(signal.SIGQUIT)  # quick shutdown: do not wait for parked followers
        server.wait(30)
        client.flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
