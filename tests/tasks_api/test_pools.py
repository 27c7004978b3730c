"""Pool routes: shapes, pending commands, configurations, hosts, bad input."""

from __future__ import annotations

import json

from tests.tasks_api.conftest import DEFAULT, fake_pool, launch_body, write_pools


def test_service_list_shapes(clients, pools, make_task):
    make_task()
    admin = clients["admin_a"]
    body = admin.get("/service/list").json()["aa_pool"]
    assert body["name"] == "aa_pool test pool" and body["entities"] == ["AA"]
    assert (body["capacity"], body["usage"], body["queued"]) == ("4 (8)", "0 (0)", 1)
    assert (body["pid"], body["busy"]) == ("**NO WORKER**", "yes")  # no worker: busy "yes"
    assert set(body["detail"]) == {"h1", "h2"} and body["detail"]["h1"]["state"] == "ok"
    assert admin.get("/service/list?verbose=1").json()["aa_pool"]["detail"] == body["detail"]
    assert admin.get("/service/list?minimal=true").json()["aa_pool"] == {
        "name": "aa_pool test pool"
    }
    bad = admin.get("/service/list?minimal=maybe")
    assert bad.status_code == 400 and "minimal" in bad.json()["message"]


def test_service_list_shows_pools_of_other_entities_with_all(clients, pools):
    """As nmt-wizard: the pools serving your own entity; ``all`` adds the others you may use."""
    assert set(clients["trainer_b"].get("/service/list").json()) == {"bb_pool", "mixed"}
    assert set(clients["superadmin"].get("/service/list").json()) == set()  # none serves SA
    assert set(clients["superadmin"].get("/service/list?all=True").json()) == {
        "aa_pool",
        "bb_pool",
        "mixed",
    }


def test_describe_and_check(clients, pools):
    trainer = clients["trainer_a"]
    body = trainer.get("/service/describe/aa_pool").json()
    assert body["capacity"] == {"gpus": 4, "cpus": 8} and body["entities"] == ["AA"]
    assert [h["name"] for h in body["hosts"]] == ["h1", "h2"]
    assert body["server"] == {  # nmt-wizard's JSON-Form field of the `server` option
        "title": "server",
        "type": "string",
        "description": "host to run the task on (any when not given)",
        "enum": ["h1", "h2"],
    }
    assert trainer.post("/service/check/aa_pool", {"server": "h1"}, format="json").json() == {
        "hosts": ["h1"]
    }
    bad = trainer.post("/service/check/aa_pool", {"server": "h9"}, format="json")
    assert bad.status_code == 400 and "h9" in bad.json()["message"]
    bad = trainer.post("/service/check/aa_pool", [1], format="json")
    assert bad.status_code == 400 and "options" in bad.json()["message"]
    assert trainer.get("/service/describe/nope").status_code == 404


def test_describe_shows_the_known_hosts_of_an_ssh_pool(clients, pools, engine):
    """Which file host keys are checked against (nmt-wizard pool files name none: then the
    worker user's); fake pools have none to show."""
    server = {"host": "gpu1", "gpus": [0], "ncpus": 2, "work_dir": "/srv/snw"}
    ssh = {
        "name": "aa_ssh",
        "description": "ssh pool",
        "service": "ssh",
        "variables": {"key_filename": "/etc/snw/id_ed25519", "server_pool": [server]},
    }
    pinned = {**ssh, "name": "aa_pinned", "variables": {**ssh["variables"]}}
    pinned["variables"]["known_hosts"] = "/etc/snw/known_hosts"
    engine.sync_pool_configs(write_pools(pools, [ssh, pinned]))
    admin = clients["admin_a"]

    described = admin.get("/service/describe/aa_ssh").json()
    assert described["known_hosts"] == {"gpu1": "~/.ssh/known_hosts"}
    assert "id_ed25519" not in json.dumps(described)
    pinned = admin.get("/service/describe/aa_pinned").json()
    assert pinned["known_hosts"] == {"gpu1": "/etc/snw/known_hosts"}
    assert "known_hosts" not in admin.get("/service/describe/aa_pool").json()


def _host_details(client) -> list[dict]:
    """The hosts of ``mixed`` as describe and ``service/list?verbose=1`` show them (the same)."""
    described = client.get("/service/describe/mixed").json()["hosts"]
    listed = client.get("/service/list?all=true").json()["mixed"]["detail"]
    keys = ("name", "tasks", "reserved_for", "reason")
    assert [{k: h[k] for k in keys} for h in described] == [
        {k: listed[h["name"]][k] for k in keys} for h in described
    ]
    return described


def test_a_shared_pool_shows_each_entity_only_the_tasks_it_may_read(clients, pools, engine):
    from tests.tasks_api.helpers import run_worker_until

    launched = clients["trainer_a"].post("/task/launch/mixed", launch_body(), format="json")
    task_id = launched.json().split("\t")[1]
    run_worker_until(engine, "mixed", lambda: engine.get_task(task_id)["status"] == "running")
    # What the worker would write: a host held for A's task, another quarantined naming it.
    engine.redis.hset(engine.keys.reserved("mixed"), "h2", task_id)
    quarantine = {"until": 4e9, "message": f"could not stop {task_id}: timeout"}
    engine.redis.hset(engine.keys.quarantine("mixed"), "h2", json.dumps(quarantine))

    def seen(name: str) -> tuple[list[str], list, list[str]]:
        hosts = _host_details(clients[name])
        return (
            [t for h in hosts for t in h["tasks"]],
            [h["reserved_for"] for h in hosts],
            [h["reason"] for h in hosts],
        )

    for name in ("trainer_a", "superadmin"):
        tasks, held, _ = seen(name)
        assert tasks == [task_id] and held == [None, task_id]
    assert seen("superadmin")[2][1] == f"quarantined: could not stop {task_id}: timeout"
    # Same pool, but A's task is not B's to see, by id, hold or quarantine detail.
    assert seen("trainer_b") == ([], [None, None], ["", "quarantined"])
    usage = clients["trainer_b"].get("/service/describe/mixed").json()["usage"]
    assert usage["gpus"] == 1  # the capacity it takes is still shown


def test_tasks_of_an_entity_a_reload_dropped_stay_hidden(clients, pools, engine):
    """B's task keeps running after the pool is given to A alone: A still does not see it."""
    from tests.tasks_api.helpers import run_worker_until

    launched = clients["trainer_b"].post("/task/launch/mixed", launch_body(), format="json")
    task_id = launched.json().split("\t")[1]
    run_worker_until(engine, "mixed", lambda: engine.get_task(task_id)["status"] == "running")
    engine.add_pool_config("mixed", "aa-only", fake_pool("mixed", entities={"AA": {}}))
    engine.select_pool_config("mixed", "aa-only")

    hosts = _host_details(clients["trainer_a"])

    assert [t for h in hosts for t in h["tasks"]] == []
    assert engine.get_task(task_id)["status"] == "running"


def test_configurations_lifecycle(clients, pools):
    admin = clients["admin_a"]
    config = fake_pool("aa_pool", description="bigger")
    assert (
        admin.post("/service/setconfig/aa_pool/big", {"config": config}, format="json").status_code
        == 200
    )
    # nmt-wizard's form field with JSON text, through the addconfig alias
    import json

    form = {"config": json.dumps(config)}
    assert admin.post("/service/addconfig/aa_pool/big2", form).status_code == 200
    listing = admin.get("/service/listconfig/aa_pool").json()
    assert listing["current"] == "base" and set(listing["configurations"]) == {
        "base",
        "big",
        "big2",
    }
    selected = admin.get("/service/selectconfig/aa_pool/big").json()
    assert selected == {"pool": "aa_pool", "current": "big", "state": "pending"}
    busy = admin.get("/service/delconfig/aa_pool/big")
    assert busy.status_code == 409 and "selected" in busy.json()["message"]
    assert admin.get("/service/delconfig/aa_pool/big2").status_code == 200
    assert admin.get("/service/delconfig/aa_pool/big2").status_code == 404
    assert admin.get("/service/selectconfig/aa_pool/nope").status_code == 404


def test_setconfig_bad_input_names_the_key(clients, pools):
    admin = clients["admin_a"]
    bad = admin.post("/service/setconfig/aa_pool/x", {"config": {"name": "aa_pool"}}, format="json")
    assert bad.status_code == 400 and "description" in bad.json()["message"]
    bad = admin.post("/service/setconfig/aa_pool/x", {}, format="json")
    assert bad.status_code == 400 and "config" in bad.json()["message"]
    bad = admin.post(
        "/service/setconfig/aa_pool/base", {"config": fake_pool("aa_pool")}, format="json"
    )
    assert bad.status_code == 409


def test_commands_answer_pending_at_once(clients, pools, engine):
    admin = clients["admin_a"]
    assert admin.get("/service/restart/aa_pool").json() == {
        "pool": "aa_pool",
        "command": "restart",
        "state": "pending",
    }
    assert admin.get("/service/stop/aa_pool").json()["state"] == "pending"
    assert engine.describe_pool("aa_pool")["command"] == "stop"


def test_enable_disable_hosts(clients, pools, engine):
    admin = clients["admin_a"]
    assert admin.get("/service/disable/aa_pool/h1?message=maintenance").status_code == 200
    host = engine.describe_pool("aa_pool")["hosts"][0]
    assert host["state"] != "ok" and "maintenance" in host["reason"]
    assert admin.get("/service/enable/aa_pool/h1").status_code == 200
    assert engine.describe_pool("aa_pool")["hosts"][0]["state"] == "ok"
    missing = admin.get("/service/enable/aa_pool/h9")
    assert missing.status_code == 404 and "h9" in missing.json()["message"]
    long = admin.get("/service/disable/aa_pool/h1?message=" + "x" * 300)
    assert long.status_code == 400 and "message" in long.json()["message"]


def test_a_configuration_cannot_hand_the_pool_to_an_entity_one_does_not_administer(
    clients, pools, engine
):
    """A's pool administrator may not attract B's tasks to A's hosts and callbacks."""
    admin = clients["admin_a"]
    grab = fake_pool("aa_pool", entities=["AA", "BB"])
    refused = admin.post("/service/setconfig/aa_pool/grab", {"config": grab}, format="json")
    assert refused.status_code == 403
    assert "entities" in refused.json()["message"] and "BB" in refused.json()["message"]
    assert "grab" not in engine.list_pool_configs("aa_pool")["configs"]
    # The super admin may; selecting it is then checked again for whoever selects.
    ok = clients["superadmin"].post(
        "/service/setconfig/aa_pool/grab", {"config": grab}, format="json"
    )
    assert ok.status_code == 200, ok.content
    assert admin.get("/service/selectconfig/aa_pool/grab").status_code == 403
    assert engine.pool_entities("aa_pool") is None  # still A's alone
    own = admin.post(
        "/service/setconfig/aa_pool/mine",
        {"config": fake_pool("aa_pool", entities=["AA"])},
        format="json",
    )
    assert own.status_code == 200, own.content


def test_a_configuration_without_entities_is_checked_against_the_pool_name(
    clients, pools, engine, tmp_path
):
    """``bb_rented`` serves A by its configuration; one without ``entities`` would hand it to
    BB (its name's entity), so A's pool administrator may not save or select one."""
    write_pools(
        pools,
        [
            fake_pool("aa_pool"),
            fake_pool("bb_pool"),
            fake_pool("mixed", entities={"AA": {}, "BB": {}}),
            fake_pool("bb_rented", entities={"AA": {}}),
        ],
    )
    engine.sync_pool_configs(pools)
    admin = clients["admin_a"]
    unlisted = fake_pool("bb_rented")
    unlisted.pop("entities", None)

    refused = admin.post("/service/setconfig/bb_rented/evil", {"config": unlisted}, format="json")
    assert refused.status_code == 403 and "BB" in refused.json()["message"]
    assert "evil" not in engine.list_pool_configs("bb_rented")["configs"]
    saved = clients["superadmin"].post(
        "/service/setconfig/bb_rented/evil", {"config": unlisted}, format="json"
    )
    assert saved.status_code == 200, saved.content
    assert admin.get("/service/selectconfig/bb_rented/evil").status_code == 403
    assert engine.pool_entities("bb_rented") == ["AA"]  # still served to A alone


def test_an_unreachable_task_store_answers_503_on_pool_routes(clients, pools, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    for path in ("/service/describe/aa_pool", "/service/list"):
        response = clients["trainer_a"].get(path)
        assert response.status_code == 503, (path, response.content[:300])
        assert "unavailable" in response.json()["message"]


# =============================================================================
# nmt-wizard HEAD's /service/configs
# =============================================================================
def test_service_configs_read_and_replace_the_configuration_in_effect(clients, pools, engine):
    from tests.tasks_api.helpers import run_worker_until

    admin = clients["admin_a"]
    current = admin.get("/service/configs/aa_pool").json()
    assert (current["name"], current["description"]) == ("aa_pool", "aa_pool test pool")
    assert current["variables"]["server_pool"][0] == {"name": "h1", "gpus": [0, 1], "ncpus": 4}

    posted = fake_pool("other_name", description="aa_pool, posted")  # the name is the pool's
    answer = admin.post("/service/configs/aa_pool", {"config": json.dumps(posted)})
    assert answer.status_code == 200 and answer.json() == "ok"
    assert engine.list_pool_configs("aa_pool") == {
        "current": "posted",
        "configs": ["base", "posted"],
    }
    current = admin.get("/service/configs/aa_pool").json()
    assert (current["name"], current["description"]) == ("aa_pool", "aa_pool, posted")
    assert isinstance(current["updated_at"], float)
    run_worker_until(
        engine,
        "aa_pool",
        lambda: engine.describe_pool("aa_pool")["description"] == "aa_pool, posted",
        config_dir=pools,
    )


def test_service_configs_refusals(clients, pools, engine):
    admin = clients["admin_a"]
    assert clients["trainer_a"].get("/service/configs/aa_pool").status_code == 403
    assert clients["trainer_b"].get("/service/configs/aa_pool").status_code == 404
    assert admin.get("/service/configs/nope").status_code == 404
    # ``mixed`` serves BB too: A's pool administrator may not replace it
    refused = admin.post("/service/configs/mixed", {"config": json.dumps(fake_pool("mixed"))})
    assert refused.status_code == 403
    bad = admin.post("/service/configs/aa_pool", {"config": "{not json"})
    assert bad.status_code == 400 and "config" in bad.json()["message"]
    wrong = fake_pool("aa_pool", callback_interval="soon")
    bad = admin.post("/service/configs/aa_pool", {"config": json.dumps(wrong)})
    assert bad.status_code == 400 and "callback_interval" in bad.json()["message"]
    assert engine.list_pool_configs("aa_pool") == {"current": "base", "configs": ["base"]}


def test_service_configs_base_is_for_super_administrators(clients, pools, engine):
    superadmin = clients["superadmin"]
    assert superadmin.get("/service/configs/_base").json() == DEFAULT
    for persona in ("admin_a", "trainer_a"):
        assert clients[persona].get("/service/configs/_base").status_code == 403
        refused = clients[persona].post("/service/configs/_base", {"config": "{}"})
        assert refused.status_code == 403

    base = {**DEFAULT, "callback_interval": 30}
    answer = superadmin.post("/service/configs/_base", {"config": json.dumps(base)})
    assert answer.status_code == 200 and answer.json() == {"message": "ok"}
    assert superadmin.get("/service/configs/_base").json() == base
    # later named configurations merge over it
    named = fake_pool("aa_pool")
    assert superadmin.post("/service/configs/aa_pool", {"config": json.dumps(named)}).json() == "ok"
    assert engine.configs.load("aa_pool").data["callback_interval"] == 30

    breaking = {**DEFAULT, "variables": []}  # every pool's variables are an object
    bad = superadmin.post("/service/configs/_base", {"config": json.dumps(breaking)})
    assert bad.status_code == 400 and "variables" in bad.json()["message"]
    assert superadmin.get("/service/configs/_base").json() == base
