"""Task ids: TRID_XXYY_NAME_NN_UUID, parent suffix, type suffix, parsing."""

import pytest

from nmtwizard.exceptions import InvalidRequest
from nmtwizard.ids import build_task_id, generate_name, language_pair, parse_task_id


def test_train_id_has_the_five_fields():
    task_id = build_task_id("ABusr", "train", xxyy="enfr", name="Model", nn=1, unique="a" * 32)
    assert task_id.startswith("ABusr_enfr_Model_01_aaaa")
    assert len(task_id) == 47
    parts = parse_task_id(task_id)
    assert (parts.trainer_id, parts.xxyy, parts.name, parts.nn, parts.task_type) == (
        "ABusr",
        "enfr",
        "Model",
        1,
        "train",
    )


def test_child_id_carries_the_parent_uuid_prefix_and_type_word():
    parent = build_task_id("ABusr", xxyy="enfr", name="M", unique="abcdef" + "0" * 26)
    child = build_task_id("ABusr", "trans", xxyy="enfr", name="M", nn=1, parent_id=parent)
    assert child.endswith("-abcde_trans")
    parts = parse_task_id(child)
    assert parts.parent_uuid == "abcde" and parts.task_type == "trans"


def test_defaults_language_pair_and_generated_name():
    task_id = build_task_id("ABusr")
    parts = parse_task_id(task_id)
    assert parts.xxyy == "xxyy" and parts.name and len(parts.name) <= 15
    assert len(generate_name()) <= 15


def test_language_pair_from_task_config():
    assert language_pair({"source": "en", "target": "de"}) == "ende"
    assert language_pair({"source": "english"}) is None


@pytest.mark.parametrize("trainer", ["AB_usr", "", "x" * 11, "a/b"])
def test_trainer_ids_with_separators_are_refused(trainer):
    with pytest.raises(InvalidRequest):
        build_task_id(trainer)


def test_exec_suffix_and_unparsable_ids():
    task_id = build_task_id("ABusr", "exec", suffix="score")
    assert parse_task_id(task_id).task_type == "exec"
    with pytest.raises(InvalidRequest):
        parse_task_id("not-an-id")
