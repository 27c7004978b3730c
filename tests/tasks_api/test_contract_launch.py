"""Launches the image contract cannot run: on a pool of plain processes (``runtime: process``,
or ``auto`` on a machine without Docker), an image without a local entrypoint program
(``variables.entrypoints``) is refused at launch, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmtwizard.services import local  # noqa: F401  (registers the `local` service)
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
    engine.sync_pool_configs(write_pools(tmp_path / "config", pools, DEFAULT))


def _docker(image: str) -> dict:
    return {"registry": "auto", "image": image, "tag": "v1", "command": ["train"]}


@pytest.mark.parametrize("pool", ["aa_procs", "aa_auto"])
def test_unmapped_image_is_refused_on_a_process_pool(clients, local_pools, pool):
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
def test_runnable_launches_are_accepted(clients, local_pools, pool, image, exec_mode):
    body = launch_body(docker=_docker(image), exec_mode=exec_mode)
    response = clients["trainer_a"].post(f"/task/launch/{pool}", body, format="json")
    assert response.status_code == 200, response.content


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
