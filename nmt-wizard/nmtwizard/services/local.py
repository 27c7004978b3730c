"""The ``local`` service: tasks on the launcher's own machine, as processes or Docker containers.

Pool configuration (``"service": "local"``)::

    "variables": {
        "runtime": "process",           # docker | process | auto (docker when the CLI exists)
        "work_dir": "var/local-tasks",  # per-task directories <work_dir>/<task_id>/
        "terminate_grace": 5,           # seconds between SIGTERM and SIGKILL
        "server_pool": [{"name": "localhost", "gpus": [0, 1], "ncpus": 4}],
        "entrypoints": {"nmtwizard/opennmt-tf": ["python3", "utilities/onmt_tf.py"]},
        "gpu_numbering": "0-indexed"    # or "1-indexed" (images before April 2020)
    }

``entrypoints`` (process runtime) names the local program that plays an image's entrypoint for
tasks under the nmt-wizard image contract; see :mod:`nmtwizard.services.hostexec` for it and
the other keys of the contract.

``server_pool`` is optional: by default one host ``localhost`` with no GPU and every CPU of the
machine. Tasks are started by the host-side runner (:mod:`nmtwizard.services.runner`) run with
this interpreter, detached from the worker: a worker that dies leaves them running, and the next
one finds them again by their working directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from nmtwizard.exceptions import InfrastructureError, OutcomeUnknown
from nmtwizard.services import register
from nmtwizard.services.base import HostSpec, parse_server_pool
from nmtwizard.services.hostexec import RUNNER_PATH, RunnerService

__all__ = ["DEFAULT_WORK_DIR", "LocalService"]

DEFAULT_WORK_DIR = "var/local-tasks"


@register("local")
class LocalService(RunnerService):
    default_runtime = "auto"
    # ``auto`` is resolved as each launch resolves it (is ``docker`` on the worker's machine), so
    # a pool without Docker refuses at launch what it could not run; Docker installed later
    # counts from the worker's next publication (a restart or configuration change).
    resolves_auto_on_worker = True

    @classmethod
    def parse_hosts(cls, config) -> list[HostSpec]:
        if config.variables.get("server_pool") is not None:
            return parse_server_pool(config)
        cpus = tuple(str(i) for i in range(os.cpu_count() or 1))
        return [HostSpec("localhost", (), cpus, {})]

    def work_root(self, host: HostSpec) -> str:
        root = host.params.get("work_dir") or self.config.variables.get("work_dir")
        return str(Path(root or DEFAULT_WORK_DIR).resolve())

    def docker_available(self, host: HostSpec) -> bool:
        return shutil.which(self.docker_binary()) is not None

    def validate(self) -> None:
        super().validate()
        for host in self.hosts.values():
            Path(self.work_root(host)).mkdir(parents=True, exist_ok=True)

    def call_runner(self, host: HostSpec, action: str, request: dict, timeout: float) -> dict:
        try:
            result = subprocess.run(
                [sys.executable, str(RUNNER_PATH), action],
                input=json.dumps(request).encode(),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise OutcomeUnknown(f"{host.name}: runner {action} timed out") from None
        try:
            return json.loads(result.stdout)
        except ValueError:
            error = result.stderr.decode(errors="replace").strip()[-500:]
            raise InfrastructureError(f"{host.name}: runner {action} failed: {error}") from None
