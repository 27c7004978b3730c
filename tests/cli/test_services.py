"""``snw ls`` / ``snw service list|describe|check`` against a live server."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import until

pytestmark = pytest.mark.django_db(transaction=True)

README_HEADER = "| Service Name | Usage | Queued | Capacity | Busy | Description |"


def _squeeze(line: str) -> str:
    return re.sub(r" +", " ", line)


def test_ls_has_the_reference_readme_columns(snw, login_as, pool_dir):
    login_as("AATRN")
    lines = snw("ls").stdout.splitlines()
    assert lines[0].startswith("+-") and lines[2].startswith("+-") and lines[-1].startswith("+-")
    assert _squeeze(lines[1]) == README_HEADER
    row = _squeeze(lines[3])
    assert row == "| aa_pool [**NO WORKER**] | 0 (0) | 0 | 4 (8) | yes | aa_pool test pool |"
    assert snw("service", "list").stdout == snw("ls").stdout


def test_ls_verbose_adds_host_rows_and_json(snw, login_as, pool_dir, worker):
    login_as("AATRN")
    until(lambda: "**NO WORKER**" not in snw("ls").stdout, what="the worker to register")
    lines = snw("ls", "-v").stdout.splitlines()
    hosts = [_squeeze(line) for line in lines if "+-- " in line]
    assert hosts == ["| +-- h1 | 0 (0) | | 2 (4) | | |", "| +-- h2 | 0 (0) | | 2 (4) | | |"]
    pools = json.loads(snw("ls", "--json").stdout)
    assert set(pools) == {"aa_pool"} and pools["aa_pool"]["capacity"] == "4 (8)"

    task_id = snw("launch", "-s", "aa_pool", "-i", "nmtwizard/echo:v1", "-q", "-c", "2",
                  "--", "train").stdout.strip()  # fmt: skip

    def usage() -> list[str]:
        detail = json.loads(snw("ls", "--json").stdout)["aa_pool"]["detail"]
        return [line for host in detail.values() for line in host["usage"]]

    until(lambda: usage() == [f"train {task_id}: 1 (2)"], what="the task to hold its slots")
    assert f"train {task_id[:20]}" in snw("ls", "-v").stdout


def test_ls_hides_other_entities_pools(snw, login_as, pool_dir):
    login_as("BBTRN")
    assert snw("ls").stdout.strip() == "No pools available."
    assert snw("ls", "-a").stdout.strip() == "No pools available."  # all: still only usable


def test_service_describe_and_check(snw, login_as, pool_dir):
    login_as("AATRN")
    described = snw("service", "describe", "aa_pool").stdout
    assert "aa_pool: aa_pool test pool" in described
    assert "h1" in described and "h2" in described
    assert json.loads(snw("service", "describe", "aa_pool", "--json").stdout)["name"] == "aa_pool"
    checked = json.loads(snw("service", "check", "aa_pool", "-r", "h1").stdout)
    assert isinstance(checked, dict)
    unknown = snw("service", "describe", "nope", ok=False)
    assert unknown.output.startswith("Error: ") and unknown.output.count("\n") == 1


def test_ls_marks_a_disabled_pool():
    from cli.services import render_pools

    pool = {"pid": "w1", "usage": "0 (0)", "queued": 0, "capacity": "2 (4)", "busy": 0}
    text = render_pools(
        {
            "AAoff": {**pool, "description": "old GPUs", "disabled": True},
            "AAon": {**pool, "description": "new GPUs", "disabled": False},
        },
        verbose=False,
    )
    rows = [_squeeze(line) for line in text.splitlines()[3:5]]
    assert rows == [
        "| AAoff [w1] | 0 (0) | 0 | 2 (4) | 0 | **DISABLED** old GPUs |",
        "| AAon [w1] | 0 (0) | 0 | 2 (4) | 0 | new GPUs |",
    ]
