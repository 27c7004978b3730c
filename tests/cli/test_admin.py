"""``snw whoami`` and ``snw entity|user|group|role|share`` over the accounts REST API
(``/auth/me``, ``/api/accounts/<resource>/``, issue 8). ``snw token`` is in ``test_auth.py``."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_whoami(snw, login_as):
    login_as("AATRN")
    text = snw("whoami").stdout
    assert "User:      AATRN" in text and "Entity:    AA" in text
    assert "AA: " in text and "train" in text
    assert json.loads(snw("whoami", "--json").stdout)["trainer_id"] == "AATRN"


def test_entity_and_user_read(snw, login_as):
    login_as("AAADM")
    assert "Entity A" in snw("entity", "list").stdout
    assert json.loads(snw("entity", "show", "AA", "--json").stdout)["entity_code"] == "AA"
    users = snw("user", "list").stdout
    assert "AATRN" in users and "AAUSR" in users and "BBTRN" not in users
    assert snw("user", "show", "BBTRN", ok=False).output.startswith("Error: ")  # not visible


def test_group_role_user_lifecycle(snw, login_as):
    login_as("AAADM")
    role = json.loads(
        snw("role", "create", "name=reader", 'grants=[{"permission": "user"}]', "--json").stdout
    )
    assert role["entity"] == "AA"
    assert "user@AA" in snw("role", "list").stdout
    group = json.loads(snw("group", "create", "name=nlp", "--json").stdout)
    snw("group", "update", str(group["id"]), "description=NLP team")
    assert json.loads(snw("group", "show", str(group["id"]), "--json").stdout)["description"] == (
        "NLP team"
    )
    created = snw("user", "create", "user_code=JOE", "first_name=Joe", f"roles=[{role['id']}]")
    assert created.stdout == "Created user AAJOE.\n"  # what `snw user show` takes
    assert "reader" in snw("user", "show", "AAJOE").stdout
    snw("user", "update", "AAJOE", "is_active=false")
    assert json.loads(snw("user", "show", "AAJOE", "--json").stdout)["is_active"] is False
    assert "Deleted group" in snw("group", "delete", str(group["id"]), "--yes").stdout
    assert "No shares." in snw("share", "list").stdout


def test_admin_forbidden_for_a_trainer(snw, login_as):
    login_as("AATRN")
    result = snw("role", "create", "name=x", 'grants=[{"permission": "admin"}]', ok=False)
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert snw("entity", "create", "entity_code=CC", "name=C", ok=False).output.startswith("Error")
