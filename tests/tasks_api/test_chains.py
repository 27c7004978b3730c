"""Chains through ``task/launch``: nmt-wizard's answer lines, its exec-mode refusals, the
launch options nmt-wizard clients send (``nbest``, ``novalidschema``, ``upgrade``), the parent
model across entities, and a score task reading its translation with its own token."""

from __future__ import annotations

import json

import pytest

from tests.tasks_api.conftest import launch_body
from tests.tasks_api.helpers import token_client

CONFIG = json.dumps({"source": "en", "target": "de"})


@pytest.fixture
def trainer(clients):
    return clients["trainer_a"]


def _chain_body(**changes) -> dict:
    return launch_body(
        docker={
            "registry": "auto",
            "image": "nmtwizard/opennmt-tf",
            "tag": "v1.20.0",
            "command": ["-c", CONFIG, "train"],
        },
        **changes,
    )


def _lines(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    answer = response.json()
    return [line.split("\t") for line in ([answer] if isinstance(answer, str) else answer)]


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_a_chain_answers_one_nmt_wizard_line_per_task(trainer, pools, engine):
    body = _chain_body(
        trainer_id="BBxyz",
        totranslate=[["in.en", "launcher:out_<MODEL>.de"]],
        toscore=[["launcher:out_<MODEL>.de", "${TMP_DIR}/ref.de"]],
    )
    response = trainer.post(
        "/task/launch/aa_pool",
        {"content": json.dumps(body), "ref.de": _upload("ref.de", b"reference")},
        format="multipart",
    )
    lines = _lines(response)
    assert [kind for kind, _, _ in lines] == ["prepr", "train", "trans", "score"]
    # cpu_allocation of the test pools: gpu_task 1; preprocess/trans default to 2; score 1
    assert [sizes for _, _, sizes in lines] == [
        "ngpus: 0, ncpus: 2",
        "ngpus: 1, ncpus: 1",
        "ngpus: 0, ncpus: 2",
        "ngpus: 0, ncpus: 1",
    ]
    prepr, train, trans, score = (task_id for _, task_id, _ in lines)
    assert all(t.startswith("AATRN_ende_") for t in (prepr, train, trans, score))
    assert engine.get_task(train)["content"]["docker"]["command"] == ["-m", prepr, "train"]
    assert engine.get_task(trans)["content"]["docker"]["command"] == [
        "-m",
        train,
        "trans",
        "--as_release",
        "-i",
        "in.en",
        "-o",
        f"launcher:out_{train}.de",
    ]
    stored = engine.get_task(score)
    assert stored["content"]["docker"]["command"] == [
        "score",
        "-o",
        f"launcher:out_{train}.de",
        "-r",
        "${TMP_DIR}/ref.de",
        "-f",
        "launcher:scores",
    ]
    assert (stored["type"], stored["parent"], stored["entity"]) == ("exec", trans, "AA")
    assert [engine.list_files(t) for t in (prepr, train, trans, score)] == [
        {"ref.de": 9},
        {"ref.de": 9},
        {},
        {"ref.de": 9},
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iterations": 1}, "chain mode unavailable in exec mode"),
        ({"totranslate": [["a", "b"]]}, "translate mode unavailable for exec cmd"),
        ({"toscore": [["a", "b"]]}, "score mode unavailable for exec cmd"),
        ({"totuminer": [["a", "b"]]}, "tuminer chain mode unavailable for exec cmd"),
    ],
)
def test_chains_are_refused_in_exec_mode_with_nmt_wizard_messages(
    trainer, pools, engine, changes, message
):
    response = trainer.post(
        "/task/launch/aa_pool", launch_body(exec_mode=True, **changes), format="json"
    )
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert engine.list_tasks() == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"docker": {"image": "nmtwizard/x", "tag": "1", "command": ["run"]}},
            "incorrect task definition",
        ),
        (
            {"docker": {"image": "nmtwizard/x", "tag": "1", "command": ["trans"]}, "iterations": 2},
            "invalid value for iterations",
        ),
        (
            {
                "docker": {
                    "image": "nmtwizard/x",
                    "tag": "1",
                    "command": ["-m", "AATRN_ende_M_01_0123456789_trans", "train"],
                }
            },
            "invalid parent task type: trans",
        ),
        (
            {"totranslate": [["a.en", "a.de"]], "toscore": [["b.de", "ref"]]},
            "toscore: no translation of this launch writes b.de",
        ),
    ],
)
def test_bad_chains_answer_400_with_nmt_wizard_messages(trainer, pools, changes, message):
    response = trainer.post("/task/launch/aa_pool", launch_body(**changes), format="json")
    assert response.status_code == 400
    assert response.json()["message"] == message


def test_nbest_changes_nothing_as_in_nmt_wizard(trainer, pools, engine):
    chain = {"totranslate": [["a.en", "launcher:a.de"]]}
    plain = _lines(trainer.post("/task/launch/aa_pool", _chain_body(**chain), format="json"))
    with_nbest = _lines(
        trainer.post("/task/launch/aa_pool", _chain_body(nbest=5, **chain), format="json")
    )
    assert [(k, s) for k, _, s in with_nbest] == [(k, s) for k, _, s in plain]
    commands = [engine.get_task(t)["content"]["docker"]["command"] for _, t, _ in with_nbest]
    assert not any("5" in c or "nbest" in " ".join(c) for c in commands)


def test_novalidschema_and_upgrade_none_are_accepted_other_upgrades_refused(trainer, pools):
    ok = trainer.post(
        "/task/launch/aa_pool", launch_body(novalidschema=True, upgrade="none"), format="json"
    )
    assert ok.status_code == 200, ok.content
    refused = trainer.post("/task/launch/aa_pool", launch_body(upgrade="v2"), format="json")
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert message.startswith("upgrade:") and "send none" in message


def test_a_model_of_another_entity_is_not_waited_for(clients, pools, engine, task_a):
    body = launch_body(
        docker={"image": "nmtwizard/x", "tag": "1", "command": ["-m", task_a, "train"]}
    )
    [(_, theirs, _)] = _lines(
        clients["trainer_b"].post("/task/launch/bb_pool", body, format="json")
    )
    [(_, ours, _)] = _lines(clients["trainer_a"].post("/task/launch/aa_pool", body, format="json"))
    assert (engine.get_task(theirs).get("parent"), engine.get_task(theirs)["status"]) == (
        None,
        "queued",
    )
    assert (engine.get_task(ours)["parent"], engine.get_task(ours)["status"]) == (
        task_a,
        "launched",
    )


def test_a_score_token_reads_its_translation_outputs_and_nothing_else(trainer, pools, engine):
    body = _chain_body(
        nochainprepr=True,
        totranslate=[["a.en", "launcher:a.de"]],
        toscore=[["launcher:a.de", "ref.de"]],
    )
    [_, (_, trans, _), (_, score, _)] = _lines(
        trainer.post("/task/launch/aa_pool", body, format="json")
    )
    as_trans = token_client(engine, trans)
    for name, data in (("a.de", b"hypothesis"), ("private.txt", b"undeclared")):
        response = as_trans.post(f"/task/file/{trans}/{name}", data, content_type="text/plain")
        assert response.status_code == 200
    as_score = token_client(engine, score)
    assert as_score.get(f"/task/file/{score}/a.de").content == b"hypothesis"
    assert as_score.get(f"/task/file/{score}/private.txt").status_code == 404
    assert as_score.get(f"/task/file/{trans}/private.txt").status_code == 403
