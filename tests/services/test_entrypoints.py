"""The local program that plays an image's entrypoint (``variables.entrypoints``) is found
relative to the directory the runner starts in (the worker's, for ``local``), also when given
as a bare file name after its interpreter, as the configuration error message suggests."""

from __future__ import annotations

import json

from tests.services.remote_pool import CONFIG_DIR, enqueue

ENTRYPOINT = "import sys\nprint('entrypoint got', ' '.join(sys.argv[1:]))\n"


def test_a_bare_entrypoint_file_name_runs_from_the_workers_directory(
    tmp_path, monkeypatch, store, make_worker
):
    start = tmp_path / "start"
    start.mkdir()
    (start / "entrypoint.py").write_text(ENTRYPOINT)
    monkeypatch.chdir(start)  # the local runner starts in the worker's directory
    data = json.loads((CONFIG_DIR / "local_demo.json").read_text())
    data["variables"].update(
        work_dir=str(tmp_path / "tasks"), entrypoints={"snw/test": ["python3", "entrypoint.py"]}
    )
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local_demo.json").write_text(json.dumps(data))
    runner = make_worker("local_demo", tmp_path / "config")

    task_id = enqueue(store, "local_demo", ["train"], ngpus=0, content={"exec_mode": False})

    assert runner.stopped(task_id)["message"] == "completed"
    assert runner.log(task_id).split("\n", 1)[1] == (
        f"entrypoint got -t {task_id} -i snw/test:1 train\n"
    )
