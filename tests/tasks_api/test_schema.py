"""OpenAPI: the schema validates with no warning, and schemathesis over ``/api/schema``
(every route, authenticated as a trainer) finds no 5xx and no schema violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.tokens import temporary_token_create
from tasks_api.engine import get_engine
from tests.factories import EntityFactory, UserFactory
from tests.tasks_api.conftest import fake_pool, write_pools


def test_schema_validates_without_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    text = (tmp_path / "schema.yaml").read_text()
    for route in ("/task/launch/{pool}", "/task/log/{task_id}", "/service/list"):
        assert route in text


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(live_server, transactional_db, redis_client, tmp_path):
    binary = Path(sys.executable).with_name("schemathesis")
    if not binary.exists() and not shutil.which("schemathesis"):
        pytest.fail("schemathesis is not installed (requirements-dev.txt)")
    trainer = UserFactory(
        entity=EntityFactory(entity_code="AA"), user_code="TRN", roles=["trainer"]
    )
    engine = get_engine()
    engine.sync_pool_configs(write_pools(tmp_path / "config", [fake_pool("aa_pool")]))
    engine.launch_chain(
        pool="aa_pool",
        trainer_id="AATRN",
        entity="AA",
        user="AATRN",
        image="nmtwizard/echo",
        tag="v1",
        command=["train"],
    )
    token = temporary_token_create(user=trainer, duration=3600).token
    result = subprocess.run(
        [
            str(binary),
            "run",
            f"{live_server.url}/api/schema",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance,response_headers_conformance",
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            "6",
            "--workers",
            "1",
            "--exclude-path",
            "/auth/logout",
            "--request-timeout",
            "30",
            "--seed",
            "7",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        check=False,
    )
    output = result.stdout + result.stderr
    Path(os.environ.get("SNW_ST_OUTPUT", "/dev/null")).write_text(output)
    assert result.returncode == 0, output[-6000:]
