"""A chain launched through the REST API runs end to end on the contract-test image.

A trainer launches, as nmt-wizard's client does (multipart: the ``content`` JSON field and the
uploaded files), a ``train`` of an image tagged 1.17.0 with ``totranslate`` and ``toscore``, on
a pool of plain processes (``local``, and the ``ssh`` test hosts) whose ``variables.entrypoints``
play the trainer image and ``nmtwizard/score`` with ``contract_image.py``; the contract keys
live in ``default.json`` as in an nmt-wizard configuration. The chain (``prepr`` → ``train`` →
``trans`` → ``score``) runs in dependency order, each task with nmt-wizard's entrypoint
arguments: ``train`` writes its model to the model storage, ``trans`` reads it, translates a
storage input and an uploaded one, and posts its outputs through the launcher storage,
``score`` reads its input through its OWN task's launcher storage (the engine serves the
declared input) and posts ``scores``. The score's token opens no undeclared file of its chain
and nothing of another chain; the ssh hosts steer the GPU task to a GPU-only server and keep
CPU tasks off it and off another entity's server; what the nmt-wizard client reads (``lt``,
``status``) shows the chain. A failing or terminated train stops its children with
``dependency_error``; a later translation of the trained model is scored in its language.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.factories import EntityFactory, UserFactory
from tests.helpers import until
from tests.services.contract_pool import contract_pool as make_contract_pool
from tests.services.contract_pool import record_task_tokens
from tests.services.remote_pool import processes

TRAINER_IMAGE, SCORE_IMAGE = "nmtwizard/contract", "nmtwizard/score"
TUMINER_IMAGE = "nmtwizard/tuminer"
CONFIG = json.dumps({"source": "en", "target": "fr"})
SOURCE = b"hello world\ngood morning\n"
REFERENCE = b"HELLO WORLD\nGOOD EVENING\n"  # the second line differs from the translation
NEWS = b"news of the day\n"  # a local input the client uploads with the launch


def _chain_keys(probes: Path, corpus: Path, disk: Path):
    """The ``corpus`` storage the translation reads, the probes the score image makes, a
    requirement every host meets; on the ssh hosts, per-server steering: ``host0`` (highest
    priority) takes only GPU tasks, ``host3`` only entity BB's."""

    def customize(data: dict, default: dict) -> None:
        data["entities"] = ["AA"]
        data["requirements"] = {"free_disk_space": {str(disk): 0.001}}
        default["storages"]["corpus"] = {"type": "local", "basedir": str(corpus)}
        default["docker"]["envvar"]["specific"][SCORE_IMAGE] = {"CONTRACT_PROBES": str(probes)}
        servers = data["variables"]["server_pool"]
        if len(servers) == 4:
            servers[0].update(only_gpu_task=True, priority=2)
            servers[3].update(entities=["BB"])

    return customize


@pytest.fixture(params=["local", "ssh"])
def chain_pool(request, live_server, transactional_db, redis_client, tmp_path):
    UserFactory(entity=EntityFactory(entity_code="AA"), user_code="TRN", roles=["trainer"])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "test.en").write_bytes(SOURCE)
    pool = make_contract_pool(
        request.param,
        request,
        tmp_path,
        live_server.url,
        (TRAINER_IMAGE, SCORE_IMAGE, TUMINER_IMAGE),
        _chain_keys(tmp_path / "probes.json", corpus, tmp_path),
    )
    pool.probes = tmp_path / "probes.json"
    pool.steered = request.param == "ssh"
    yield pool
    pool.stop_worker()


class _Trainer:
    """The trainer ``AATRN`` on the live launcher, launching on one pool as nmt-wizard's
    client does."""

    def __init__(self, base: str, pool: str):
        self.base, self.pool = base, pool
        login = requests.get(f"{base}/auth/token", auth=("AATRN", "secret-password"), timeout=10)
        assert login.status_code == 200, login.text
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {login.json()['token']}"

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=10)

    def launch(self, command: list[str], uploads=None, **chain) -> list[list[str]]:
        """``launch``: the ``content`` JSON field plus the reference file (and ``uploads``);
        the answer lines split into ``[type, task id, sizes]``."""
        content = {
            "docker": {
                "registry": "auto",
                "image": TRAINER_IMAGE,
                "tag": "1.17.0",
                "command": command,
            },
            "ngpus": 1,
            "ncpus": 1,
            "options": {},
            **chain,
        }
        files = {"ref.fr": REFERENCE, **(uploads or {})}
        response = self.session.post(
            f"{self.base}/task/launch/{self.pool}",
            data={"content": json.dumps(content)},
            files={name: (name, data) for name, data in files.items()},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return [line.split("\t") for line in response.json()]

    def train(self, *options: str) -> list[list[str]]:
        """A train translating ``corpus:test.en`` (and an uploaded ``news.en``, as the clients
        rewrite a local input to ``${TMP_DIR}/news.en``), scoring the first translation."""
        return self.launch(
            ["-c", CONFIG, "train", *options],
            uploads={"news.en": NEWS},
            totranslate=[
                ["corpus:test.en", "launcher:test_<MODEL>.fr"],
                ["${TMP_DIR}/news.en", "launcher:news_<MODEL>.fr"],
            ],
            toscore=[["launcher:test_<MODEL>.fr", "${TMP_DIR}/ref.fr"]],
        )


def _seen(store, task_id: str) -> tuple[list[str], Path]:
    """The argv the contract-test image recorded in its working directory, and that directory."""
    workdir = Path(store.get(task_id)["job"]["workdir"])
    return _record(workdir)["argv"], workdir


def _record(workdir: Path) -> dict:
    """What the contract-test image recorded: its argv and the storages it read (``-s -``)."""
    return json.loads((workdir / "contract-seen.json").read_text())


def _all_complete(store, ids: list[str], timeout: float) -> None:
    """Wait for the tasks to stop; each completed and its image's checks all passed."""
    until(lambda: all(store.get(t)["status"] == "stopped" for t in ids), timeout, "tasks stopped")
    for task_id in ids:
        task, log = store.get(task_id), store.read_log(task_id)[0].decode()
        assert task["message"] == "completed", log
        assert "contract: all checks passed" in log


@pytest.mark.slow
def test_a_chain_launched_through_the_api_runs_end_to_end(chain_pool, live_server):
    pool, store, base = chain_pool, chain_pool.store, live_server.url
    trainer = _Trainer(base, pool.name)
    lines = trainer.train("--upload", "notes.txt")
    failing = trainer.train("--upload", "notes.txt", "--fail")

    # -- upstream's answer: one line per task, in chain order, with its type and sizes
    assert [(kind, sizes) for kind, _, sizes in lines] == [
        ("prepr", "ngpus: 0, ncpus: 1"),
        ("train", "ngpus: 1, ncpus: 1"),
        ("trans", "ngpus: 0, ncpus: 1"),
        ("score", "ngpus: 0, ncpus: 1"),
    ]
    assert [kind for kind, _, _ in failing] == ["prepr", "train", "trans", "score"]
    lines_ids = [task_id for _, task_id, _ in lines]
    prepr, train, trans, score = lines_ids
    prepr_b, train_b, trans_b, score_b = (task_id for _, task_id, _ in failing)
    output = f"test_{train}.fr"

    # what the score's token may and may not read (the score image requests them)
    pool.probes.write_text(
        json.dumps(
            [
                [score, output, 200],  # its declared input, through its own task
                [score, "notes.txt", 404],  # the train's file is no input of the score
                [train, "notes.txt", 403],  # nor readable through the train's own route
                [trans, output, 403],  # the input only through the score's own task
                [score, f"test_{train_b}.fr", 404],  # another chain's output name
                [train_b, "notes.txt", 403],  # another chain's file
                [score_b, "ref.fr", 403],
            ]
        )
    )
    minted = record_task_tokens()
    pool.start_worker()
    every = (prepr, train, trans, score, prepr_b, train_b, trans_b, score_b)

    def stopped():
        return all(store.get(t)["status"] == "stopped" for t in every)

    until(stopped, 120, "both chains stopped")
    tasks = {t: store.get(t) for t in every}
    logs = {t: store.read_log(t)[0].decode() for t in every}

    # -- every task of the chain completed, each after its parent
    for task_id in (prepr, train, trans, score):
        assert tasks[task_id]["message"] == "completed", logs[task_id]
        assert "contract: all checks passed" in logs[task_id]
        assert minted[task_id] not in logs[task_id]
    for parent, child in ((prepr, train), (train, trans), (trans, score)):
        assert tasks[child]["parent"] == parent
        assert tasks[child]["allocated_time"] >= tasks[parent]["stopped_time"]
    hosts = {t: tasks[t]["job"]["host"] for t in (prepr, train, trans, score, prepr_b, train_b)}
    if pool.steered:  # the GPU task on the GPU-only server, no CPU-only task there nor on BB's
        assert hosts[train] == hosts[train_b] == "host0"
        assert {hosts[t] for t in (prepr, trans, score, prepr_b)} <= {"host1", "host2"}
    else:
        assert set(hosts.values()) == {"localhost"}

    # -- each got nmt-wizard's entrypoint arguments, then its chain command
    host = base.split("://", 1)[1]

    def storages(task_id: str) -> str:
        """The storages JSON the image reads on its stdin, the token in the launcher's URLs."""
        callback = f"http://{minted[task_id]}:x@{host}"
        return (
            '{"launcher": {"type": "http", '
            f'"get_pattern": "{callback}/task/file/{task_id}/%s", '
            f'"post_pattern": "{callback}/task/file/{task_id}/%s"}}, '
            f'"models": {{"type": "local", "basedir": "{pool.models}", "default_ms": true}}, '
            f'"corpus": {{"type": "local", "basedir": "{pool.models.parent / "corpus"}"}}}}'
        )

    def expected(task_id: str, gpus: list[str], image: str, command: list[str]) -> list[str]:
        callback = f"http://{minted[task_id]}:x@{host}"
        workdir = Path(store.get(task_id)["job"]["workdir"])
        assert _record(workdir)["storages"] == storages(task_id)  # read from stdin (-s -)
        return [
            "-s", "-", *gpus, "-t", task_id, "-b", callback, "-bi", "1",
            "--statistics_url", f"{callback}/task/stat/{task_id}",
            "-i", image, "-ms", "models:", *command,
        ]  # fmt: skip

    trainer_image = "nmtwizard/contract:1.17.0"
    assert _seen(store, prepr)[0] == expected(
        prepr, [], trainer_image, ["-c", CONFIG, "--no_push", "preprocess", "--build_model"]
    )
    assert _seen(store, train)[0] == expected(
        train, ["-g", "0"], trainer_image, ["-m", prepr, "train", "--upload", "notes.txt"]
    )
    argv, trans_dir = _seen(store, trans)
    inputs = ["corpus:test.en", f"{trans_dir}/files/news.en"]
    outputs = [f"launcher:{output}", f"launcher:news_{train}.fr"]
    assert argv == expected(
        trans,
        [],
        trainer_image,
        ["-m", train, "trans", "--as_release", "-i", *inputs, "-o", *outputs],
    )
    argv, score_dir = _seen(store, score)
    reference = f"{score_dir}/files/ref.fr"
    assert argv == expected(
        score,
        [],
        "nmtwizard/score:latest",
        ["score", "-o", f"launcher:{output}", "-r", reference, "-f", "launcher:scores"],
    )

    # -- what each left: statistics, the model, the translation, the scores
    for task_id, command, gpus in (
        (prepr, "preprocess", "0"),
        (train, "train", "0"),
        (trans, "trans", "0"),
        (score, "score", "0"),
    ):
        assert tasks[task_id]["statistics"] == {
            "contract": {"command": command, "fetched": 0, "gpus": gpus}
        }
    assert not (pool.models / prepr).exists()  # --no_push: the prepr model is not pushed
    model = (pool.models / train / "checkpoint.txt").read_text()
    assert model == f"model of {train} built by {trainer_image}\n"
    translation = f"model of {train} built by {trainer_image}\nHELLO WORLD\nGOOD MORNING\n"
    assert store.get_file(trans, output) == translation.encode()
    news = f"model of {train} built by {trainer_image}\nNEWS OF THE DAY\n"
    assert store.get_file(trans, f"news_{train}.fr") == news.encode()
    scores = trainer.get(f"/task/file/{score}/scores")
    assert scores.status_code == 200, scores.text
    assert json.loads(scores.content) == {output: 0.5}
    assert f"contract: ok read {output} through its own task (200)" in logs[score]
    revoked = requests.get(
        f"{base}/task/file/{score}/scores", auth=(minted[score], "x"), timeout=10
    )
    assert revoked.status_code == 401  # a finished task's token opens nothing any more
    for probe in (
        f"{score}/{output}: 200",
        f"{score}/notes.txt: 404",
        f"{train}/notes.txt: 403",
        f"{trans}/{output}: 403",
        f"{score}/test_{train_b}.fr: 404",
        f"{train_b}/notes.txt: 403",
        f"{score_b}/ref.fr: 403",
    ):
        assert f"contract: ok probe {probe}" in logs[score]

    # -- what nmt-wizard's client reads of the chain (``lt -pa``, ``status``)
    rows = {r["task_id"]: r for r in trainer.get("/task/list/AATRN*?with_parent=True").json()}
    assert {t: (rows[t]["parent"], rows[t]["image"], rows[t]["message"]) for t in lines_ids} == {
        prepr: ("", trainer_image, "completed"),
        train: (prepr, trainer_image, "completed"),
        trans: (train, trainer_image, "completed"),
        score: (trans, "nmtwizard/score:latest", "completed"),
    }
    status = trainer.get(f"/task/status/{score}").json()
    assert None not in status.values()
    assert (status["type"], status["parent"], sorted(status["files"])) == (
        "exec",
        trans,
        ["news.en", "ref.fr", "scores"],  # the score gets every upload, as in nmt-wizard
    )
    assert json.loads(status["content"])["inputs"] == {output: trans}

    # -- the failing train stops its children
    assert tasks[prepr_b]["message"] == "completed", logs[prepr_b]
    assert tasks[train_b]["message"] == "error", logs[train_b]
    assert "contract: train failing as asked (--fail)" in logs[train_b]
    assert store.get_file(train_b, "notes.txt") == f"uploaded by {train_b}\n".encode()
    for child in (trans_b, score_b):
        assert tasks[child]["message"] == "dependency_error"
        assert "job" not in tasks[child]  # never started

    # -- a translation of the trained model, launched afterwards, scored in its target language
    pool.probes.write_text(
        json.dumps(
            [
                [None, "again.fr", 200],  # this score's own declared input
                [None, output, 404],  # the first translation is no input of this score
                [score, "scores", 403],  # the first score's file
            ]
        )
    )
    later = trainer.launch(
        ["-m", train, "trans", "-i", "corpus:test.en", "-o", "launcher:again.fr"],
        ngpus=0,
        toscore=[["launcher:again.fr", "${TMP_DIR}/ref.fr"]],
    )
    assert [(kind, sizes) for kind, _, sizes in later] == [
        ("trans", "ngpus: 0, ncpus: 1"),
        ("score", "ngpus: 0, ncpus: 1"),
    ]
    trans_c, score_c = (task_id for _, task_id, _ in later)
    _all_complete(store, [trans_c, score_c], 60)
    assert store.get(trans_c)["parent"] == train
    assert _seen(store, trans_c)[0][-8:] == [
        "-m", train, "trans", "-i", "corpus:test.en", "-o", "launcher:again.fr", "--as_release",
    ]  # fmt: skip
    argv, score_dir = _seen(store, score_c)
    assert argv[-9:] == [
        "score", "-o", "launcher:again.fr", "-r", f"{score_dir}/files/ref.fr",
        "-l", "fr", "-f", "launcher:scores",
    ]  # fmt: skip
    assert json.loads(store.get_file(score_c, "scores")) == {"again.fr": 0.5}

    # -- a training terminated through the API stops its process and its children
    aborted = trainer.train("--seconds", "60")
    prepr_d, train_d, trans_d, score_d = (task_id for _, task_id, _ in aborted)
    until(lambda: store.get(train_d)["status"] == "running", 60, "the long train running")
    until(lambda: "contract: beat 200" in store.read_log(train_d)[0].decode(), 30, "its beat")
    answer = trainer.get(f"/task/terminate/{train_d}")
    assert answer.json()["message"] == f"terminating {train_d}"
    stopped_d = (prepr_d, train_d, trans_d, score_d)
    until(lambda: all(store.get(t)["status"] == "stopped" for t in stopped_d), 30, "chain stopped")
    assert [store.get(t)["message"] for t in stopped_d] == [
        "completed",
        "aborted",
        "dependency_error",
        "dependency_error",
    ]
    job = store.get(train_d)["job"]
    until(lambda: job["pid"] not in dict(processes()), 10, "the train's process gone")
    assert "contract: all checks passed" not in store.read_log(train_d)[0].decode()


@pytest.mark.slow
def test_iterations_chain_each_training_on_the_previous_one(chain_pool, live_server):
    """``iterations: 2``: each training (with its prepr step) starts from the previous one's
    model, and each is translated and scored."""
    pool, store, base = chain_pool, chain_pool.store, live_server.url
    lines = _Trainer(base, pool.name).launch(
        ["-c", CONFIG, "train"],
        iterations=2,
        totranslate=[["corpus:test.en", "launcher:test_<MODEL>.fr"]],
        toscore=[["launcher:test_<MODEL>.fr", "${TMP_DIR}/ref.fr"]],
    )
    assert [kind for kind, _, _ in lines] == ["prepr", "train", "trans", "score"] * 2
    ids = [task_id for _, task_id, _ in lines]
    prepr1, train1, trans1, score1, prepr2, train2, trans2, score2 = ids
    pool.probes.write_text("[]")
    record_task_tokens()
    pool.start_worker()
    _all_complete(store, ids, 120)
    assert [store.get(t).get("parent") for t in ids] == [
        None, prepr1, train1, trans1, train1, prepr2, train2, trans2,
    ]  # fmt: skip

    def command(task_id: str) -> list[str]:
        argv = _seen(store, task_id)[0]
        return argv[argv.index("models:") + 1 :]

    assert command(prepr2) == ["-m", train1, "--no_push", "preprocess", "--build_model"]
    assert command(train2) == ["-m", prepr2, "train"]
    assert command(trans2)[:2] == ["-m", train2]
    for train, score in ((train1, score1), (train2, score2)):
        assert json.loads(store.get_file(score, "scores")) == {f"test_{train}.fr": 0.5}
        assert (pool.models / train / "checkpoint.txt").exists()


@pytest.mark.slow
def test_a_tuminer_reads_its_uploaded_source_and_the_translation(chain_pool, live_server):
    """``totuminer``: the TU-miner task gets the uploaded source (``${TMP_DIR}``) and reads
    the translation through its own task; it runs on the launch's GPUs."""
    pool, store, base = chain_pool, chain_pool.store, live_server.url
    lines = _Trainer(base, pool.name).launch(
        ["-c", CONFIG, "train"],
        uploads={"news.en": NEWS},
        nochainprepr=True,
        totranslate=[["${TMP_DIR}/news.en", "launcher:news_<MODEL>.fr.gz"]],
        totuminer=[["${TMP_DIR}/news.en", "launcher:news_<MODEL>.fr.gz"]],
    )
    assert [(kind, sizes) for kind, _, sizes in lines] == [
        ("train", "ngpus: 1, ncpus: 1"),
        ("trans", "ngpus: 0, ncpus: 1"),
        ("tuminer", "ngpus: 1, ncpus: 1"),
    ]
    ids = [task_id for _, task_id, _ in lines]
    train, _, tuminer = ids
    record_task_tokens()
    pool.start_worker()
    _all_complete(store, ids, 90)
    argv, workdir = _seen(store, tuminer)
    assert argv[argv.index("-i") :] == [
        "-i", "nmtwizard/tuminer:latest", "-ms", "models:",
        "tuminer", "--tumode", "score", "--srcfile", f"{workdir}/files/news.en",
        "--tgtfile", f"launcher:news_{train}.fr.gz", "--output", f"launcher:news_{train}",
    ]  # fmt: skip
    assert argv[argv.index("-g") + 1] == "0"
    assert store.get_file(tuminer, f"news_{train}") == b"news of the day ||| NEWS OF THE DAY\n"
