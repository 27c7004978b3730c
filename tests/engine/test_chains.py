"""Chains, by nmt-wizard's launch rules (reference §2.4.1, §2.4.2, §2.4.6, §4.6): the prepr
split, iterations, totranslate / toscore / totuminer children, ``<MODEL>``, the exec-mode
refusals, dependency_error down a chain, and the declared inputs a score task may read.

Expected commands, ids, types and sizes are written out from the reference."""

from __future__ import annotations

import json
import re

import pytest

from nmtwizard.chains import tag_at_least
from nmtwizard.exceptions import (
    CapacityError,
    FileNotFoundInTask,
    InvalidFileName,
    InvalidRequest,
)
from tests.engine.conftest import DEFAULT, fake_pool, run_until, write_config

CONFIG = json.dumps({"source": "en", "target": "de"})
HEX = "[0-9a-f]"
# Every cpu_allocation key a chain looks up, each with its own value.
CHAIN_DEFAULT = {
    **DEFAULT,
    "cpu_allocation": {
        "gpu_task": 2,
        "preprocess_task": 3,
        "trans_task": 4,
        "tuminer_task": 5,
        "train_task": 6,
    },
}
MODEL = "ABusr_ende_Old_03_0123456789abcdef0123456789abcdef"  # a training, by its id


@pytest.fixture
def chain_config(tmp_path):
    return write_config(tmp_path / "chains", fake_pool(hosts={"h1": ([0, 1], 8)}), CHAIN_DEFAULT)


@pytest.fixture
def chain(engine, chain_config):
    """Launch on the chain pool; answer ``[(label, stored task), ...]`` in chain order."""
    engine.sync_pool_configs(chain_config)

    def do(command, tag="v1.20.0", **kwargs):
        args = {
            "pool": "pool",
            "trainer_id": "ABusr",
            "entity": "AB",
            "user": "ABusr",
            "image": "nmtwizard/opennmt-tf",
            "tag": tag,
            "command": command,
            "name": "Model",
            **kwargs,
        }
        planned = engine.launch_chain(**args)
        return [(t.label, engine.get_task(t.task_id)) for t in planned]

    return do


def uuid5(task_id: str) -> str:
    return task_id.split("_")[4][:5]


def command(task: dict) -> list[str]:
    return task["content"]["docker"]["command"]


# =============================================================================
# Version gates
# =============================================================================
@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("1.4.0", True),
        ("v1.4.0", True),
        ("v1.10.2", True),
        ("2.0.0", True),
        ("1.3.9", False),
        ("v1.4.0-rc1", False),
        ("latest", False),
        ("v1", False),
        ("1.4", False),
    ],
)
def test_semver_gate(tag, expected):
    assert tag_at_least(tag, (1, 4, 0)) is expected


@pytest.mark.parametrize(
    ("tag", "statistics"), [("v1.17.0", True), ("1.16.9", False), ("latest", False)]
)
def test_every_task_content_carries_exec_mode_and_support_statistics(chain, tag, statistics):
    for _, task in chain(["-c", CONFIG, "train"], tag=tag):
        assert task["content"]["exec_mode"] is False
        assert task["content"]["support_statistics"] is statistics
    ((label, task),) = chain(["sh", "-c", "echo hi"], tag=tag, exec_mode=True, ngpus=0)
    assert label == "exec" and task["type"] == "exec" and task["content"]["exec_mode"] is True
    assert task["content"]["support_statistics"] is statistics


# =============================================================================
# prepr + train
# =============================================================================
def test_train_from_tag_1_4_0_is_split_into_prepr_and_train(chain, engine):
    [(l1, prepr), (l2, train)] = chain(
        ["-c", CONFIG, "-ms", "s3:models", "train", "--extra"], tag="v1.4.0", files={"c.txt": b"x"}
    )
    assert (l1, prepr["type"], l2, train["type"]) == ("prepr", "prepr", "train", "train")
    prepr_id, train_id = prepr["task_id"], train["task_id"]
    assert re.fullmatch(f"ABusr_ende_Model_01_{HEX}{{27}}_preprocess", prepr_id)
    assert re.fullmatch(f"ABusr_ende_Model_01_{HEX}{{21}}-{uuid5(prepr_id)}", train_id)
    assert command(prepr) == [
        "-c",
        CONFIG,
        "-ms",
        "s3:models",
        "--no_push",
        "preprocess",
        "--build_model",
    ]
    assert command(train) == ["-m", prepr_id, "-ms", "s3:models", "train", "--extra"]
    assert (prepr["ngpus"], prepr["ncpus"], train["ngpus"], train["ncpus"]) == (0, 3, 1, 2)
    assert (prepr.get("parent"), train["parent"]) == (None, prepr_id)
    assert (prepr["status"], train["status"]) == ("queued", "launched")
    assert (prepr["iteration"], train["iteration"]) == (1, 1)
    assert engine.list_files(prepr_id) == engine.list_files(train_id) == {"c.txt": 1}


def test_the_prepr_step_keeps_an_existing_model_option(chain):
    [(_, prepr), (_, train)] = chain(["-m", MODEL, "-c", CONFIG, "train"])
    assert command(prepr) == ["-m", MODEL, "-c", CONFIG, "--no_push", "preprocess", "--build_model"]
    assert command(train) == ["-m", prepr["task_id"], "train"]
    # NN: the model's 03, +1 for the prepr step; the train it prepared keeps 04
    assert re.fullmatch(f"ABusr_ende_Model_04_{HEX}{{21}}-01234_preprocess", prepr["task_id"])
    assert re.fullmatch(
        f"ABusr_ende_Model_04_{HEX}{{21}}-{uuid5(prepr['task_id'])}", train["task_id"]
    )


@pytest.mark.parametrize(
    ("tag", "flags"),
    [
        ("v1.3.9", {}),
        ("latest", {}),
        ("v1.4.0-rc1", {}),
        ("v1.20.0", {"nochainprepr": True}),
    ],
)
def test_no_split_below_1_4_0_for_non_semver_tags_or_with_nochainprepr(chain, tag, flags):
    [(label, train)] = chain(["-c", CONFIG, "train"], tag=tag, **flags)
    assert label == "train" and command(train) == ["-c", CONFIG, "train"]
    assert re.fullmatch(f"ABusr_ende_Model_01_{HEX}{{27}}", train["task_id"])
    assert (train["ngpus"], train["ncpus"], train["status"]) == (1, 2, "queued")


def test_a_prepr_launch_is_one_cpu_task_with_nmt_wizard_command(chain):
    [(label, prepr)] = chain(["-m", MODEL, "preprocess", "--dropped"], ngpus=1)
    assert label == "prepr"
    assert command(prepr) == ["-m", MODEL, "--no_push", "preprocess", "--build_model"]
    assert (prepr["ngpus"], prepr["ncpus"]) == (0, 3)


# =============================================================================
# Iterations
# =============================================================================
def test_iterations_each_with_its_prepr_step(chain):
    tasks = chain(["-c", CONFIG, "train"], iterations=2)
    assert [label for label, _ in tasks] == ["prepr", "train", "prepr", "train"]
    p1, t1, p2, t2 = (task for _, task in tasks)
    assert command(p1) == ["-c", CONFIG, "--no_push", "preprocess", "--build_model"]
    assert command(t1) == ["-m", p1["task_id"], "train"]
    assert command(p2) == ["-m", t1["task_id"], "--no_push", "preprocess", "--build_model"]
    assert command(t2) == ["-m", p2["task_id"], "train"]
    assert [t.get("parent") for t in (p1, t1, p2, t2)] == [
        None,
        p1["task_id"],
        t1["task_id"],
        p2["task_id"],
    ]
    assert [t["iteration"] for t in (p1, t1, p2, t2)] == [1, 1, 2, 2]
    assert re.fullmatch(
        f"ABusr_ende_Model_02_{HEX}{{21}}-{uuid5(t1['task_id'])}_preprocess", p2["task_id"]
    )
    assert [t["status"] for t in (p1, t1, p2, t2)] == ["queued", "launched", "launched", "launched"]


def test_iterations_without_split_chain_trainings(chain):
    tasks = chain(["-m", MODEL, "train"], tag="v1.2.0", iterations=3)
    assert [label for label, _ in tasks] == ["train"] * 3
    t1, t2, t3 = (task for _, task in tasks)
    assert [command(t) for t in (t1, t2, t3)] == [
        ["-m", MODEL, "train"],
        ["-m", t1["task_id"], "train"],
        ["-m", t2["task_id"], "train"],
    ]
    assert [t["iteration"] for t in (t1, t2, t3)] == [4, 5, 6]


# =============================================================================
# totranslate
# =============================================================================
def test_totranslate_runs_as_release_on_cpus_from_1_8_0(chain, engine):
    tasks = chain(
        ["-c", CONFIG, "train"],
        tag="v1.8.0",
        nochainprepr=True,
        ngpus=2,
        priority=3,
        files={"c.txt": b"x"},
        totranslate=[["in1.en", "launcher:out1_<MODEL>.de"], ["in2.en", "launcher:out2.de"]],
    )
    [(_, train), (label, trans)] = tasks
    train_id = train["task_id"]
    assert label == "trans" and trans["type"] == "trans" and trans["parent"] == train_id
    assert re.fullmatch(
        f"ABusr_ende_Model_01_{HEX}{{21}}-{uuid5(train_id)}_trans", trans["task_id"]
    )
    assert command(trans) == [
        "-m",
        train_id,
        "trans",
        "--as_release",
        "-i",
        "in1.en",
        "in2.en",
        "-o",
        f"launcher:out1_{train_id}.de",
        "launcher:out2.de",
    ]
    assert trans["content"]["outputs"] == [f"launcher:out1_{train_id}.de", "launcher:out2.de"]
    assert (trans["ngpus"], trans["ncpus"], trans["priority"]) == (0, 4, 4)
    assert (train["ngpus"], train["ncpus"], train["priority"]) == (2, 2, 3)
    assert engine.list_files(trans["task_id"]) == {}  # uploads stay with the training
    assert trans["content"]["docker"]["image"] == "nmtwizard/opennmt-tf"


@pytest.mark.parametrize(("tag", "flags"), [("v1.20.0", {"notransasrelease": True}), ("1.7.0", {})])
def test_totranslate_on_gpus_splits_inputs_over_the_requested_gpus(chain, tag, flags):
    tasks = chain(
        ["-c", CONFIG, "train"],
        tag=tag,
        nochainprepr=True,
        ngpus=2,
        totranslate=[["a.en", "launcher:a.de"], ["b.en", "launcher:b.de"], ["c.en", "c.de"]],
        **flags,
    )
    [(_, train), (_, first), (_, second)] = tasks
    model = train["task_id"]
    assert command(first) == [
        "-m",
        model,
        "trans",
        "-i",
        "a.en",
        "b.en",
        "-o",
        "launcher:a.de",
        "launcher:b.de",
    ]
    assert command(second) == ["-m", model, "trans", "-i", "c.en", "-o", "c.de"]
    assert [(t["ngpus"], t["ncpus"]) for t in (first, second)] == [(1, 2), (1, 2)]


def test_totranslate_with_no_gpu_is_one_cpu_task(chain):
    [_, (_, trans)] = chain(
        ["-c", CONFIG, "train"],
        tag="1.7.0",
        nochainprepr=True,
        ngpus=0,
        totranslate=[["a.en", "a.de"], ["b.en", "b.de"]],
    )
    assert command(trans)[3:] == ["-i", "a.en", "b.en", "-o", "a.de", "b.de"]
    assert (trans["ngpus"], trans["ncpus"]) == (0, 4)


@pytest.mark.parametrize(
    ("tag", "flags", "expected", "ngpus"),
    [
        ("v1.8.0", {}, ["--as_release"], 0),
        ("v1.8.0", {"notransasrelease": True}, [], 1),
        ("v1.7.0", {}, [], 1),
        ("latest", {}, [], 1),
    ],
)
def test_a_trans_launch_as_release(chain, tag, flags, expected, ngpus):
    base = ["-m", MODEL, "trans", "-i", "a.en", "-o", "launcher:a.de"]
    [(label, trans)] = chain(base, tag=tag, **flags)
    assert label == "trans" and command(trans) == base + expected
    # the CPU default is looked up with the requested GPU (nmt-wizard's order): gpu_task
    assert (trans["ngpus"], trans["ncpus"]) == (ngpus, 2)
    assert trans["content"]["outputs"] == ["launcher:a.de"]
    assert re.fullmatch(f"ABusr_ende_Model_03_{HEX}{{21}}-01234_trans", trans["task_id"])


def test_as_release_already_in_the_command_keeps_the_gpu(chain):
    [(_, trans)] = chain(["-m", MODEL, "trans", "--as_release", "-i", "a", "-o", "b"], tag="1.8.0")
    assert command(trans)[-1] == "b" and trans["ngpus"] == 1


# =============================================================================
# toscore, totuminer
# =============================================================================
def test_toscore_adds_a_score_task_per_translation(chain, engine):
    tasks = chain(
        ["-m", MODEL, "train"],
        nochainprepr=True,
        notransasrelease=True,
        ngpus=2,
        priority=1,
        files={"ref.de": b"ref"},
        totranslate=[["a.en", "launcher:a_<MODEL>.de"], ["b.en", "launcher:b.de"]],
        toscore=[
            ["launcher:b.de", "${TMP_DIR}/ref.de"],
            ["launcher:a_<MODEL>.de", "${TMP_DIR}/ref.de"],
        ],
    )
    assert [label for label, _ in tasks] == ["train", "trans", "trans", "score", "score"]
    _, (_, trans_a), (_, trans_b), (_, score_b), (_, score_a) = tasks
    train_id = tasks[0][1]["task_id"]
    output_a = f"launcher:a_{train_id}.de"
    assert command(score_a) == [
        "score",
        "-o",
        output_a,
        "-r",
        "${TMP_DIR}/ref.de",
        "-l",
        "de",
        "-f",
        "launcher:scores",
    ]
    assert command(score_b)[:5] == ["score", "-o", "launcher:b.de", "-r", "${TMP_DIR}/ref.de"]
    assert score_a["content"]["docker"] | {"command": None} == {
        "image": "nmtwizard/score",
        "registry": "hub",
        "tag": "latest",
        "command": None,
    }
    assert score_a["content"]["inputs"] == {f"a_{train_id}.de": trans_a["task_id"]}
    assert score_b["content"]["inputs"] == {"b.de": trans_b["task_id"]}
    assert (score_a["type"], score_a["parent"], score_b["parent"]) == (
        "exec",
        trans_a["task_id"],
        trans_b["task_id"],
    )
    assert (score_a["ngpus"], score_a["ncpus"], score_a["priority"]) == (0, 1, 3)
    assert score_a["content"]["exec_mode"] is False
    assert re.fullmatch(
        f"ABusr_ende_Model_04_{HEX}{{21}}-{uuid5(trans_a['task_id'])}_score", score_a["task_id"]
    )
    assert engine.list_files(score_a["task_id"]) == {"ref.de": 3}  # the uploads come along
    assert engine.list_files(trans_a["task_id"]) == {}


def test_toscore_without_a_parent_model_has_no_language_option(chain):
    tasks = chain(
        ["-c", CONFIG, "train"],
        nochainprepr=True,
        totranslate=[["a.en", "launcher:a.de"]],
        toscore=[["launcher:a.de", "ref.de"]],
    )
    assert command(tasks[-1][1]) == [
        "score",
        "-o",
        "launcher:a.de",
        "-r",
        "ref.de",
        "-f",
        "launcher:scores",
    ]


def test_toscore_after_a_trans_launch_reads_its_outputs(chain):
    [(_, trans), (label, score)] = chain(
        ["-m", MODEL, "trans", "-i", "a.en", "-o", "launcher:a.de"],
        tag="1.2.0",
        toscore=[["launcher:a.de", "ref.de"]],
    )
    assert label == "score" and score["parent"] == trans["task_id"]
    assert score["content"]["inputs"] == {"a.de": trans["task_id"]}


def test_an_output_no_translation_writes_is_refused(chain, engine):
    with pytest.raises(
        InvalidRequest, match=r"toscore: no translation of this launch writes x\.de"
    ):
        chain(["train"], totranslate=[["a.en", "a.de"]], toscore=[["x.de", "ref"]])
    with pytest.raises(InvalidRequest, match="totuminer: no translation of this launch writes x"):
        chain(["train"], totranslate=[["a.en", "a.de"]], totuminer=[["a.en", "x"]])
    assert engine.list_tasks() == []


def test_totuminer_adds_a_tuminer_task_per_translation(chain, engine):
    tasks = chain(
        ["-c", CONFIG, "train"],
        nochainprepr=True,
        priority=2,
        files={"c.txt": b"x"},
        totranslate=[["src.en", "launcher:out_<MODEL>.de.gz"]],
        totuminer=[["src.en", "launcher:out_<MODEL>.de.gz"]],
    )
    [(_, train), (_, trans), (label, tuminer)] = tasks
    train_id = train["task_id"]
    assert label == "tuminer" and tuminer["type"] == "exec"
    assert command(tuminer) == [
        "tuminer",
        "--tumode",
        "score",
        "--srcfile",
        "src.en",
        "--tgtfile",
        f"launcher:out_{train_id}.de.gz",
        "--output",
        f"launcher:out_{train_id}",
    ]
    assert tuminer["content"]["docker"]["image"] == "nmtwizard/tuminer"
    assert tuminer["content"]["inputs"] == {f"out_{train_id}.de.gz": trans["task_id"]}
    assert (tuminer["ngpus"], tuminer["ncpus"], tuminer["priority"]) == (1, 5, 4)
    assert tuminer["parent"] == trans["task_id"]
    assert re.fullmatch(
        f"ABusr_ende_Model_01_{HEX}{{21}}-{uuid5(trans['task_id'])}_tuminer", tuminer["task_id"]
    )
    assert engine.list_files(tuminer["task_id"]) == {}


@pytest.mark.parametrize(
    ("flags", "ngpus"),
    [({}, 0), ({"notransasrelease": True}, 1)],
    ids=["as-release", "not-as-release"],
)
def test_a_tuminer_runs_on_the_gpus_of_its_trans_launch(chain, flags, ngpus):
    """A translation launched as release runs on CPUs, and so does its TU-miner (nmt-wizard)."""
    [(_, trans), (label, tuminer)] = chain(
        ["-m", MODEL, "trans", "-i", "src.en", "-o", "launcher:out.de"],
        tag="v1.8.0",
        totuminer=[["src.en", "launcher:out.de"]],
        **flags,
    )
    assert label == "tuminer"
    assert (trans["ngpus"], tuminer["ngpus"]) == (ngpus, ngpus)


def test_children_reading_an_upload_get_the_uploads(chain, engine):
    """A local input the client uploaded reaches a translation and a TU-miner task as
    ``${TMP_DIR}/<name>``: they get the launch's files (nmt-wizard gave them none)."""
    tasks = chain(
        ["-c", CONFIG, "train"],
        nochainprepr=True,
        files={"src.en": b"hello\n"},
        totranslate=[["${TMP_DIR}/src.en", "launcher:out_<MODEL>.de"]],
        totuminer=[["${TMP_DIR}/src.en", "launcher:out_<MODEL>.de"]],
    )
    [(_, train), (_, trans), (_, tuminer)] = tasks
    for task in (train, trans, tuminer):
        assert engine.list_files(task["task_id"]) == {"src.en": 6}


def test_every_task_of_a_chain_must_fit_a_host(engine, tmp_path):
    small = {**CHAIN_DEFAULT, "cpu_allocation": {"tuminer_task": 9}}
    engine.sync_pool_configs(
        write_config(tmp_path / "small", fake_pool(hosts={"h1": ([0], 8)}), small)
    )
    with pytest.raises(
        CapacityError, match="no resource available on pool for 1 gpus \\(9 cpus\\)"
    ):
        engine.launch_chain(
            pool="pool",
            trainer_id="ABusr",
            entity="AB",
            user="ABusr",
            image="nmtwizard/x",
            tag="1.0.0",
            command=["train"],
            totranslate=[["a", "b"]],
            totuminer=[["a", "b"]],
        )
    assert engine.list_tasks() == []


# =============================================================================
# Refusals
# =============================================================================
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"iterations": 1}, "chain mode unavailable in exec mode"),
        ({"totranslate": [["a", "b"]]}, "translate mode unavailable for exec cmd"),
        ({"toscore": []}, "score mode unavailable for exec cmd"),
        ({"totuminer": [["a", "b"]]}, "tuminer chain mode unavailable for exec cmd"),
    ],
)
def test_chains_are_refused_in_exec_mode(chain, engine, extra, message):
    with pytest.raises(InvalidRequest) as caught:
        chain(["score", "-o", "x"], exec_mode=True, **extra)
    assert str(caught.value) == message
    assert engine.list_tasks() == []


@pytest.mark.parametrize(
    ("command_", "extra", "message"),
    [
        (["run", "x"], {}, "incorrect task definition"),
        (["trans"], {"iterations": 2}, "invalid value for iterations"),
        (["train"], {"iterations": 0}, "invalid value for iterations"),
        (["-m", MODEL + "_trans", "train"], {}, "invalid parent task type: trans"),
        (["-m", MODEL + "_release", "trans"], {}, "invalid parent task type: relea"),
        (["-m", MODEL + "_preprocess", "preprocess"], {}, "invalid parent task type: prepr"),
        (["train"], {"totranslate": [["only-one"]]}, "totranslate: expected a list of"),
    ],
)
def test_bad_chains_are_refused(chain, engine, command_, extra, message):
    with pytest.raises(InvalidRequest) as caught:
        chain(command_, **extra)
    assert str(caught.value).startswith(message)
    assert engine.list_tasks() == []


# =============================================================================
# The parent model
# =============================================================================
def test_a_model_that_is_a_task_here_is_waited_for(chain, engine):
    [(_, model)] = chain(["train"], tag="latest")
    [(_, child)] = chain(["-m", model["task_id"], "train"], tag="latest")
    assert (child["parent"], child["status"]) == (model["task_id"], "launched")
    assert child["iteration"] == 2 and child["task_id"].startswith("ABusr_xxyy_Model_02_")
    # a model the caller may not see, or that is no task here, only names the new ids
    [(_, hidden)] = chain(["-m", model["task_id"], "train"], tag="latest", visible_entities={"CD"})
    [(_, outside)] = chain(["-m", MODEL, "train"], tag="latest")
    [(_, foreign)] = chain(["-m", "catalog-model", "train"], tag="latest")
    assert [t.get("parent") for t in (hidden, outside, foreign)] == [None, None, None]
    assert [t["status"] for t in (hidden, outside, foreign)] == ["queued"] * 3
    assert foreign["task_id"].startswith("ABusr_xxyy_Model_01_")


# =============================================================================
# Running chains
# =============================================================================
def test_a_failed_training_stops_its_whole_tree_with_dependency_error(
    chain, engine, make_worker, chain_config
):
    worker = make_worker(directory=chain_config)
    tasks = chain(
        ["-c", CONFIG, "train"],
        options={"fake": {"duration": 0.05, "exit_code": 1}},
        totranslate=[["a.en", "launcher:a.de"]],
        toscore=[["launcher:a.de", "ref.de"]],
    )
    ids = [task["task_id"] for _, task in tasks]
    assert [label for label, _ in tasks] == ["prepr", "train", "trans", "score"]
    run_until(worker, lambda: all(engine.get_task(t)["status"] == "stopped" for t in ids), 8)
    assert [engine.get_task(t)["message"] for t in ids] == [
        "error",
        "dependency_error",
        "dependency_error",
        "dependency_error",
    ]
    assert all("running_time" not in engine.get_task(t) for t in ids[1:])


def test_a_chain_runs_in_order_to_completion(chain, engine, make_worker, chain_config):
    worker = make_worker(directory=chain_config)
    tasks = chain(
        ["train"],
        tag="1.2.0",
        options={"fake": {"duration": 0.02}},
        totranslate=[["a.en", "launcher:a.de"]],
        toscore=[["launcher:a.de", "ref.de"]],
    )
    ids = [task["task_id"] for _, task in tasks]
    run_until(worker, lambda: all(engine.get_task(t)["status"] == "stopped" for t in ids), 8)
    done = [engine.get_task(t) for t in ids]
    assert [t["message"] for t in done] == ["completed"] * 3
    assert done[0]["stopped_time"] <= done[1]["running_time"] <= done[1]["stopped_time"]
    assert done[1]["stopped_time"] <= done[2]["running_time"]


# =============================================================================
# Declared inputs
# =============================================================================
def test_a_score_reads_the_declared_outputs_of_its_translation_only(chain, engine):
    [(_, train), (_, trans), (_, score)] = chain(
        ["train"],
        tag="1.2.0",
        files={"ref.de": b"reference"},
        totranslate=[["a.en", "launcher:a.de"]],
        toscore=[["launcher:a.de", "${TMP_DIR}/ref.de"]],
    )
    score_id, trans_id = score["task_id"], trans["task_id"]
    engine.put_file(trans_id, "a.de", b"hypothesis")
    engine.put_file(trans_id, "private.txt", b"not declared")
    engine.put_file(train["task_id"], "a.de", b"the training's own")

    assert engine.get_file(score_id, "a.de") == b"hypothesis"
    assert engine.get_file(score_id, "ref.de") == b"reference"  # its own upload
    assert engine.list_files(score_id) == {"ref.de": 9}  # inputs are not its files
    with pytest.raises(
        FileNotFoundInTask, match=re.escape(f"cannot find file private.txt for task {score_id}")
    ):
        engine.get_file(score_id, "private.txt")
    for climbing in (f"../{trans_id}/a.de", f"../{trans_id}/private.txt", "../../etc/passwd"):
        with pytest.raises(InvalidFileName):
            engine.get_file(score_id, climbing)
    # the declaration works one way: the translation cannot read the score's files
    engine.put_file(score_id, "scores", b"42")
    with pytest.raises(FileNotFoundInTask):
        engine.get_file(trans_id, "scores")


def test_a_declared_input_wins_over_an_upload_of_the_same_name(chain, engine):
    [_, (_, trans), (_, score)] = chain(
        ["train"],
        tag="1.2.0",
        files={"a.de": b"uploaded"},
        totranslate=[["a.en", "launcher:a.de"]],
        toscore=[["launcher:a.de", "ref"]],
    )
    score_id = score["task_id"]
    assert engine.list_files(score_id) == {"a.de": 8}  # the upload reached the score task
    with pytest.raises(
        FileNotFoundInTask, match=re.escape(f"cannot find file a.de for task {score_id}")
    ):
        engine.get_file(score_id, "a.de")  # not yet translated: never the upload
    engine.put_file(trans["task_id"], "a.de", b"hypothesis")
    assert engine.get_file(score_id, "a.de") == b"hypothesis"


def test_a_declared_input_not_yet_written_is_missing(chain, engine):
    [_, _, (_, score)] = chain(
        ["train"],
        tag="1.2.0",
        totranslate=[["a.en", "launcher:a.de"]],
        toscore=[["launcher:a.de", "ref"]],
    )
    with pytest.raises(
        FileNotFoundInTask, match=re.escape(f"cannot find file a.de for task {score['task_id']}")
    ):
        engine.get_file(score["task_id"], "a.de")


def test_children_priorities_stay_within_the_cap(chain):
    tasks = chain(
        ["train"],
        tag="1.2.0",
        priority=99_998,
        totranslate=[["a.en", "launcher:a.de"]],
        toscore=[["launcher:a.de", "ref"]],
    )
    assert [task["priority"] for _, task in tasks] == [99_998, 99_999, 99_999]
