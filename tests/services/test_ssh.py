"""``ssh``-only behaviour against real sshd hosts: host keys, lost hosts, secrets, reuse."""

from __future__ import annotations

import json
import time

import pytest

from nmtwizard.exceptions import InfrastructureError
from nmtwizard.keys import Keys
from nmtwizard.services import LaunchRequest, ServiceContext
from nmtwizard.services.ssh import SshService
from tests.services.remote_pool import enqueue, kill_sshd, kill_tree_under, pool_config

SECRET = "tok-SECRET-5d2e8b"
PRIVATE = "sk-PRIVATE-91c4"


def _worker(make_worker, tmp_path, data):
    config_dir = tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "remote_test.json").write_text(json.dumps(data))
    return make_worker("remote_test", config_dir)


def test_killing_sshd_mid_task_ends_it_with_a_clear_message_and_frees_slots(
    remote_hosts, make_worker, tmp_path, store
):
    runner = _worker(make_worker, tmp_path, remote_hosts.data)
    task_id = enqueue(store, "remote_test", ["sleep", "60"], ngpus=2, options={"server": "host2"})
    runner.running(task_id)
    host = remote_hosts.host("host2")
    kill_sshd(host)
    try:
        task = runner.stopped(task_id, timeout=20)
    finally:
        kill_tree_under(host.root / task_id)
    assert task["message"] == "lost_connection"
    assert "host2" in task["status_error"] and "cannot connect" in task["status_error"]
    assert store.slots("remote_test", ["host2"])["host2"] == ({}, {})


@pytest.mark.parametrize("case", ["unknown", "changed"])
def test_untrusted_host_key_is_refused_and_the_host_quarantined(
    case, remote_hosts, make_worker, tmp_path, store
):
    lines = [h.known_hosts_line for h in remote_hosts.hosts if h.name != "host3"]
    if case == "changed":  # host3's port with another host's key
        other = remote_hosts.host("host0").known_hosts_line.split(" ", 1)[1]
        lines.append(f"[127.0.0.1]:{remote_hosts.host('host3').port} {other}")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(lines) + "\n")
    data = json.loads(json.dumps(remote_hosts.data))
    data["variables"]["known_hosts"] = str(known_hosts)
    runner = _worker(make_worker, tmp_path, data)
    task_id = enqueue(store, "remote_test", ["true"], ngpus=1, options={"server": "host3"})
    quarantine = runner.until(
        lambda: store.redis.hget(store.keys.quarantine("remote_test"), "host3"), what="quarantine"
    )
    expected = "unknown host key" if case == "unknown" else "does not match known_hosts"
    assert expected in json.loads(quarantine)["message"]
    assert known_hosts.read_text().count("\n") == len(lines)  # nothing was added
    # Re-queued (right after the quarantine is written), it waits for a usable host.
    runner.until(lambda: store.get(task_id)["status"] == "queued", what="re-queued")
    assert not (remote_hosts.host("host3").root / task_id).exists()


def test_no_secret_on_the_hosts_command_lines_or_in_logs(remote_hosts, store, redis_client, caplog):
    data = json.loads(json.dumps(remote_hosts.data))
    data["callback_url"] = "http://127.0.0.1:9"  # unreachable: callbacks fail, polling works
    data["callback_interval"] = 1
    data["docker"] = {"envvar": {"API_KEY": f"[[private:{PRIVATE}]]"}}
    service = SshService(pool_config(data), ServiceContext(redis_client, Keys()))
    service.validate()
    task_id = enqueue(store, "remote_test", [], ngpus=1)
    command = ("sh", "-c", 'echo "key=${#API_KEY} token=${#TASK_TOKEN}"; sleep 8')
    request = LaunchRequest(
        task_id=task_id,
        host="host0",
        gpus=("2",),
        cpus=("0",),
        image="x",
        tag="1",
        command=command,
        callback_url=data["callback_url"],
        token=SECRET,
        beat_interval=1,
    )
    try:
        job = service.launch(request)
        code, out, _err = service.connection("host0").execute("ps -eo pid,args", b"", 10)
        assert code == 0 and b"sleep 8" in out
        assert SECRET.encode() not in out and PRIVATE.encode() not in out
        time.sleep(1.5)  # let a callback attempt fail and be noted
        assert service.status(task_id, "host0", job).state.value == "running"
        log = store.read_log(task_id)[0].decode()
        assert f"key={len(PRIVATE)} token={len(SECRET)}" in log
        workdir = remote_hosts.host("host0").root / task_id
        runner_log = (workdir / "runner.log").read_text()
        assert "callback" in runner_log  # the failed callbacks are noted ...
        for text in (
            log,
            runner_log,
            (workdir / "task.log").read_text(),
            caplog.text,
            json.dumps(store.get(task_id)),
        ):
            assert SECRET not in text and PRIVATE not in text  # ... without any secret
    finally:
        service.terminate(task_id, "host0", None)
        service.close()


def test_connection_is_reused_and_reopened(remote_hosts, store, redis_client):
    service = SshService(pool_config(remote_hosts.data), ServiceContext(redis_client, Keys()))
    connection = service.connection("host1")
    for _ in range(3):
        assert service.status("TSuse_nothing", "host1", None).state.value == "dead"
    client = connection._client
    assert service.status("TSuse_nothing", "host1", None).detail.startswith(
        "task TSuse_nothing not"
    )
    assert connection._client is client  # one connection for every call
    client.close()  # the connection breaks: the next call opens a new one
    assert service.status("TSuse_nothing", "host1", None).state.value == "dead"
    assert connection._client is not client
    service.close()


def test_unreachable_host_is_an_infrastructure_error(remote_hosts, redis_client):
    data = json.loads(json.dumps(remote_hosts.data))
    data["variables"]["server_pool"][0]["port"] = 1  # nothing listens there
    service = SshService(pool_config(data), ServiceContext(redis_client, Keys()))
    with pytest.raises(InfrastructureError, match=r"host0.*cannot connect"):
        service.safe_status("TSuse_x", "host0", None)
