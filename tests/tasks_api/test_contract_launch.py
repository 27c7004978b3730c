"""Launches the image contract cannot run: on a pool of plain processes (``runtime: process``,
or ``auto`` where the pool's worker finds no Docker), an image without a local entrypoint
program (``variables.entrypoints``) is refused at launch, naming the key.

``auto`` depends on the machine that runs the tasks: the launcher (maybe another machine, as
in ``docker/``) publishes it unresolved, the worker resolves it on its own machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmtwizard.services import local  # noqa: F401  (registers the `local` service)
from nmtwizard.worker import Worker
from tests.tasks_api.conftest import DEFAULT, launch_body, write_pools


def _local_pool(name: str, runtime: str, docker_dir: Path | None = None) -> dict:
    return {
        "name": name,
        "description": "local processes",
        "service": "local",
        **({"docker": {"path": str(docker_dir)}} if docker_dir else {}),
        "variables": {
            "runtime": runtime,
            "server_pool": [{"name": "localhost", "gpus": [0], "ncpus": 2}],
            "entrypoints": {"nmtwizard/opennmt-tf": ["python3", "onmt.py"]},
        },
    }


@pytest.fixture
def local_pools(engine, tmp_path):
    """``auto`` pools: one on a machine without ``docker`` (processes), one with a stand-in."""
    without, with_docker = tmp_path / "no-docker", tmp_path / "docker"
    without.mkdir()
    with_docker.mkdir()
    (with_docker / "docker").write_text("#!/bin/sh\nexit 0\n")
    (with_docker / "docker").chmod(0o755)
    pools = [
        _local_pool("aa_procs", "process"),
        _local_pool("aa_docker", "docker"),
        _local_pool("aa_auto", "auto", without),
        _local_pool("aa_auto_docker", "auto", with_docker),
    ]
    config_dir = write_pools(tmp_path / "config", pools, DEFAULT)
    engine.sync_pool_configs(config_dir)
    return config_dir


def _published_images(engine, pool: str) -> str:
    return engine.redis.hget(engine.keys.pool(pool), "contract_images")


def _worker_publishes(engine, pools: list[str]) -> None:
    """The pools' workers start on this machine (they publish what they resolve) and stop."""
    for pool in pools:
        worker = Worker(engine.store, pool)
        worker.start()
        worker.shutdown()


@pytest.fixture
def resolved_pools(engine, local_pools):
    _worker_publishes(engine, ["aa_auto", "aa_auto_docker"])


def _docker(image: str) -> dict:
    return {"registry": "auto", "image": image, "tag": "v1", "command": ["train"]}


@pytest.mark.parametrize("pool", ["aa_procs", "aa_auto"])
def test_unmapped_image_is_refused_on_a_process_pool(clients, resolved_pools, pool):
    """Also on ``runtime: auto`` without Docker: the runtime would run it as a process."""
    body = launch_body(docker=_docker("nmtwizard/opennmt-py"), exec_mode=False)
    response = clients["trainer_a"].post(f"/task/launch/{pool}", body, format="json")
    assert response.status_code == 400
    assert "variables.entrypoints['nmtwizard/opennmt-py']" in response.content.decode()
    assert "exec_mode: true" in response.content.decode()


@pytest.mark.parametrize(
    ("pool", "image", "exec_mode"),
    [
        ("aa_procs", "nmtwizard/opennmt-tf", False),  # mapped
        ("aa_procs", "nmtwizard/opennmt-py", True),  # the command as given
        ("aa_docker", "nmtwizard/opennmt-py", False),  # Docker runs any image
        ("aa_auto_docker", "nmtwizard/opennmt-py", False),  # auto, Docker found
    ],
)
def test_runnable_launches_are_accepted(clients, resolved_pools, pool, image, exec_mode):
    body = launch_body(docker=_docker(image), exec_mode=exec_mode)
    response = clients["trainer_a"].post(f"/task/launch/{pool}", body, format="json")
    assert response.status_code == 200, response.content


def test_the_launcher_publishes_auto_unresolved(engine, local_pools):
    """Docker or not on the launcher's machine says nothing of the worker's: no restriction."""
    assert _published_images(engine, "aa_procs") == '["nmtwizard/opennmt-tf"]'
    assert _published_images(engine, "aa_docker") == "null"
    assert _published_images(engine, "aa_auto") == "null"
    assert _published_images(engine, "aa_auto_docker") == "null"


def test_the_worker_resolves_auto_and_a_launcher_restart_keeps_it(engine, local_pools):
    _worker_publishes(engine, ["aa_auto", "aa_auto_docker"])
    assert _published_images(engine, "aa_auto") == '["nmtwizard/opennmt-tf"]'  # no docker
    assert _published_images(engine, "aa_auto_docker") == "null"  # docker found

    engine.sync_pool_configs(local_pools)  # the launcher restarts

    assert _published_images(engine, "aa_auto") == '["nmtwizard/opennmt-tf"]'
    assert _published_images(engine, "aa_procs") == '["nmtwizard/opennmt-tf"]'


def test_a_chain_whose_score_image_is_unmapped_is_refused_whole(clients, local_pools, engine):
    """The trainer image is mapped, ``nmtwizard/score`` is not: no task of the chain is made."""
    body = launch_body(
        docker={**_docker("nmtwizard/opennmt-tf"), "tag": "v1.17.0"},
        totranslate=[["in.en", "launcher:out_<MODEL>.de"]],
        toscore=[["launcher:out_<MODEL>.de", "ref.de"]],
    )
    response = clients["trainer_a"].post("/task/launch/aa_procs", body, format="json")
    assert response.status_code == 400
    assert "variables.entrypoints['nmtwizard/score']" in response.content.decode()
    assert engine.list_tasks(pool="aa_procs") == []
