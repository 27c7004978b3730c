"""A pool running the contract-test image (``contract_image.py``) against a live launcher.

:func:`contract_pool` writes a ``local`` (or, over the ``remote_test`` sshd hosts, ``ssh``) pool
of plain processes whose ``variables.entrypoints`` map the given image names to the
contract-test image, with the contract keys written from the reference (callback URL,
``launcher`` and ``models`` storages), publishes it, and hands back a :class:`ContractPool`
whose worker runs in a thread once the test has queued its tasks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from django.db import connection

from accounts.tokens import mint_task_token, revoke_task_token
from nmtwizard import hooks
from nmtwizard.worker import Worker
from tasks_api.engine import get_engine
from tests.services.remote_pool import CONTRACT_IMAGE, enqueue
from tests.tasks_api.conftest import DEFAULT, write_pools

__all__ = ["RELATIVE_PROGRAM", "ContractPool", "contract_pool", "record_task_tokens"]

RELATIVE_PROGRAM = "tests/services/contract_image.py"  # the local worker runs from the repo root


class ContractPool:
    """A pool carrying the contract keys; its worker (a thread) starts when the tasks wait."""

    def __init__(self, name: str, program: str, models: Path, config_dir: Path):
        self.name, self.program, self.models = name, program, models
        self.config_dir = config_dir
        self.store = get_engine().store
        self.worker: Worker | None = None
        self.thread: threading.Thread | None = None

    def launch(self, image, command, ngpus, *, statistics=False, files=None) -> str:
        """Queue one contract task straight into the store (no chain, no REST)."""
        return enqueue(
            self.store,
            self.name,
            command,
            ngpus=ngpus,
            image=image,
            tag="1.17.0",
            files=files,
            trainer_id="AATRN",
            content={"exec_mode": False, "support_statistics": statistics},
        )

    def start_worker(self) -> None:
        self.worker = Worker(
            self.store, self.name, config_dir=self.config_dir, tick=0.02, refresh_counter=1
        )
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.request_exit(0)
            self.thread.join(30)
            if hasattr(self.worker.service, "close"):
                self.worker.service.close()


def _process_pool(kind: str, request, tmp_path: Path) -> tuple[dict, str]:
    """The pool data of ``kind`` (``local`` or ``ssh``) and the program path its hosts run."""
    if kind == "ssh":
        data = json.loads(json.dumps(request.getfixturevalue("remote_hosts").data))
        return data, str(CONTRACT_IMAGE)  # an ssh login starts in its home: absolute here
    data = {
        "name": "aa_contract",
        "description": "the contract image as local processes",
        "service": "local",
        "variables": {
            "runtime": "process",
            "work_dir": str(tmp_path / "work"),
            "server_pool": [{"name": "localhost", "gpus": [0, 1, 2, 3], "ncpus": 4}],
        },
    }
    return data, RELATIVE_PROGRAM


def contract_pool(
    kind: str,
    request,
    tmp_path: Path,
    live_url: str,
    images: Iterable[str],
    customize: Callable[[dict, dict], None] | None = None,
) -> ContractPool:
    """Publish the pool and return it. As in nmt-wizard's configuration, the keys every pool
    shares (callback URL and interval, storages, ``docker.envvar``) live in ``default.json``,
    the pool file holds its service; ``customize(pool data, default data)`` may change both."""
    data, program = _process_pool(kind, request, tmp_path)
    data.pop("callback_interval", None)  # remote_test.json's own: the shared one applies
    models = tmp_path / "models"
    default = {
        **DEFAULT,
        "callback_url": live_url,
        "callback_interval": 1,
        "storages": {
            "launcher": {
                "type": "http",
                "get_pattern": "<CALLBACK_URL>/task/file/<TASK_ID>/%s",
                "post_pattern": "<CALLBACK_URL>/task/file/<TASK_ID>/%s",
            },
            "models": {"type": "local", "basedir": str(models), "default_ms": True},
        },
        "docker": {**DEFAULT["docker"], "envvar": {"LANG": "C.UTF-8", "specific": {}}},
    }
    data["variables"].update(
        terminate_grace=1,
        entrypoints={image: ["python3", program] for image in images},
    )
    if customize is not None:
        customize(data, default)
    config_dir = write_pools(tmp_path / "config", [data], default)
    get_engine().sync_pool_configs(config_dir)
    return ContractPool(data["name"], program, models, config_dir)


def record_task_tokens() -> dict[str, str]:
    """Install SNW's real token hooks; the returned dict fills with each task's minted token."""
    minted: dict[str, str] = {}

    def mint(task_id, owner):
        try:
            minted[task_id] = mint_task_token(task_id, owner)
        finally:
            connection.close()  # a worker thread's own connection: the test database is dropped
        return minted[task_id]

    hooks.set_token_hooks(minter=mint, revoker=revoke_task_token)
    return minted
