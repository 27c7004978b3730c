"""A worker warns at start about a host that runs the tasks of several entities as plain
processes: they share one Unix user, so each task can read the others' tokens
(``/proc/<pid>/environ``, command lines). Docker (``runtime: docker``, or ``auto`` where the
worker finds Docker) isolates them; a host serving one entity only risks nothing new."""

from __future__ import annotations

import json
import logging

import pytest

WARNING = (
    "pool shared: host localhost runs the tasks of {who} as plain processes of one Unix user: "
    "each task can read the others' tokens; use runtime docker for shared pools"
)


def _pool(tmp_path, runtime: str, *, entities=None, host_entities=None, docker=False) -> dict:
    docker_dir = tmp_path / "docker-bin"
    docker_dir.mkdir(exist_ok=True)
    if docker:
        (docker_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
        (docker_dir / "docker").chmod(0o755)
    host = {"name": "localhost", "gpus": [0], "ncpus": 2}
    if host_entities is not None:
        host["entities"] = host_entities
    return {
        "name": "shared",
        "description": "one machine",
        "service": "local",
        "docker": {"path": str(docker_dir)},
        **({"entities": entities} if entities is not None else {}),
        "variables": {
            "runtime": runtime,
            "work_dir": str(tmp_path / "tasks"),
            "server_pool": [host],
        },
    }


@pytest.mark.parametrize(
    ("runtime", "options", "who"),
    [
        ("process", {}, "every entity"),
        ("process", {"entities": {"AA": {}, "BB": {}}}, "entities AA, BB"),
        ("auto", {"entities": ["BB", "AA"]}, "entities AA, BB"),  # no Docker on the worker's
        ("process", {"entities": {"AA": {}}}, None),
        ("process", {"entities": ["AA", "BB"], "host_entities": ["AA"]}, None),
        ("docker", {}, None),
        ("auto", {"docker": True}, None),
    ],
    ids=["any", "two", "auto-two", "one", "host-one", "docker", "auto-docker"],
)
def test_a_process_host_shared_by_entities_is_warned_about(
    runtime, options, who, tmp_path, make_worker, caplog
):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "shared.json").write_text(json.dumps(_pool(tmp_path, runtime, **options)))
    with caplog.at_level(logging.WARNING, logger="nmtwizard.worker"):
        make_worker("shared", config_dir)
    warnings = [r.getMessage() for r in caplog.records if "Unix user" in r.getMessage()]
    assert warnings == ([WARNING.format(who=who)] if who else [])
