"""Pool configuration: merge over default.json, validation naming file and key, named configs."""

import json
import logging
import re

import pytest

from nmtwizard import pool_config
from nmtwizard.api import Engine
from nmtwizard.exceptions import ConfigError, Conflict, InvalidRequest
from nmtwizard.pool_config import load_all_pools, load_pool, merge_config, ttl_for

from .conftest import DEFAULT, NMTWIZARD_DEFAULT, fake_pool, write_config


def test_pool_file_is_merged_over_default(tmp_path):
    directory = write_config(tmp_path, fake_pool())
    config = load_pool(directory, "pool")
    assert config.service == "fake"
    assert config.data["callback_interval"] == 60  # from default.json
    assert [h.name for h in config.hosts] == ["h1", "h2"]
    assert config.hosts[0].gpus == ("0", "1") and len(config.hosts[0].cpus) == 4


def test_explicit_gpu_ids_are_kept(tmp_path):
    directory = write_config(tmp_path, fake_pool(hosts={"h1": ([1, 3, 7], 2)}))
    assert load_pool(directory, "pool").hosts[0].gpus == ("1", "3", "7")


def test_type_mismatch_with_default_names_file_and_key(tmp_path):
    pool = fake_pool()
    pool["callback_interval"] = "sixty"
    directory = write_config(tmp_path, pool)
    with pytest.raises(ConfigError, match=r"pool\.json: key callback_interval"):
        load_pool(directory, "pool")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda p: p.pop("description"), "key description: is required"),
        (lambda p: p.update(service="nope"), "key service: unknown service"),
        (
            lambda p: p["variables"]["server_pool"][1].update(gpus="0,1"),
            r"key variables.server_pool\[1\].gpus",
        ),
        (
            lambda p: p["variables"]["server_pool"][0].update(ncpus=0),
            r"key variables.server_pool\[0\].ncpus",
        ),
        (lambda p: p.update(ttl_policy=[{"pattern": {}, "ttl": -1}]), r"key ttl_policy\[0\].ttl"),
        (lambda p: p.update(docker={"mount": ["nocolon"]}), r"key docker.mount\[0\]"),
    ],
)
def test_validation_errors_name_file_and_key(tmp_path, change, key):
    pool = fake_pool()
    change(pool)
    directory = write_config(tmp_path, pool)
    with pytest.raises(ConfigError, match=key) as info:
        load_all_pools(directory)
    assert "pool.json" in str(info.value)


def test_name_must_prefix_the_file_name(tmp_path):
    write_config(tmp_path, fake_pool())
    (tmp_path / "other.json").write_text(json.dumps(fake_pool(name="pool")))
    with pytest.raises(ConfigError, match=r"other\.json: key name"):
        load_all_pools(tmp_path)


def test_invalid_json_names_the_file(tmp_path):
    write_config(tmp_path, fake_pool())
    (tmp_path / "pool.json").write_text("{oops")
    with pytest.raises(ConfigError, match=r"pool\.json: invalid JSON"):
        load_pool(tmp_path, "pool")


def test_merge_recurses_and_override_wins():
    merged = merge_config({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 5}}, "x")
    assert merged == {"a": {"b": 5, "c": 2}, "d": 1}


def test_ttl_policy_first_match_wins():
    policy = DEFAULT["ttl_policy"] + [
        {"pattern": {"message": "dependency_error"}, "ttl": 10},
        {"pattern": {"status": "stopped"}, "ttl": 100},
    ]
    assert ttl_for(policy, {"status": "stopped", "message": "dependency_error"}) == 10
    assert ttl_for(policy, {"status": "stopped", "message": "completed"}) == 100
    assert ttl_for([], {"status": "stopped"}) is None


def test_named_configs_list_add_select_delete(engine, config_dir):
    engine.sync_pool_configs(config_dir)
    assert engine.list_pool_configs("pool") == {"current": "base", "configs": ["base"]}
    bigger = fake_pool(hosts={"h1": ([0, 1, 2, 3], 8)})
    engine.add_pool_config("pool", "big", bigger)
    assert engine.get_pool_config("pool", "big")["variables"]["server_pool"][0]["ncpus"] == 8
    assert engine.select_pool_config("pool", "big")["state"] == "pending"
    assert engine.list_pool_configs("pool")["current"] == "big"
    with pytest.raises(Conflict):
        engine.delete_pool_config("pool", "big")  # selected
    with pytest.raises(Conflict):
        engine.delete_pool_config("pool", "base")
    engine.select_pool_config("pool", "base")
    engine.delete_pool_config("pool", "big")
    assert engine.list_pool_configs("pool")["configs"] == ["base"]


def test_adding_an_invalid_named_config_names_it(engine, config_dir):
    engine.sync_pool_configs(config_dir)
    broken = fake_pool()
    broken["variables"]["server_pool"] = []
    with pytest.raises(ConfigError, match=r"configuration 'broken' of pool 'pool': key variables"):
        engine.add_pool_config("pool", "broken", broken)


@pytest.mark.parametrize(
    ("service_keys", "key"),
    [
        ({"fake": {"bogus": 1}}, "variables.fake: unknown key(s) bogus"),
        ({"fake": {"hosts": {"h9": {}}}}, "variables.fake.hosts.h9: not a host of the pool"),
    ],
)
def test_a_config_no_worker_could_start_with_is_refused_before_it_is_stored(
    engine, config_dir, service_keys, key
):
    engine.sync_pool_configs(config_dir)
    bad = fake_pool()
    bad["variables"].update(service_keys)

    with pytest.raises(ConfigError, match=re.escape(key)):
        engine.add_pool_config("pool", "bad", bad)

    assert "bad" not in engine.list_pool_configs("pool")["configs"]


def test_ssh_configs_are_checked_without_touching_this_machine(engine, config_dir, tmp_path):
    """Keys an ssh pool needs are checked where the configuration is added; the files they
    name only where a worker starts (the API may run elsewhere)."""
    engine.sync_pool_configs(config_dir)
    ssh = fake_pool()
    ssh["service"] = "ssh"
    ssh["variables"] = {
        "server_pool": [{"host": "gpu1", "gpus": [0], "ncpus": 2, "work_dir": "/srv/snw"}],
    }

    with pytest.raises(ConfigError, match=r"variables\.key_filename: a key is required"):
        engine.add_pool_config("pool", "ssh", ssh)
    ssh["variables"]["key_filename"] = str(tmp_path / "not-here" / "id_ed25519")
    ssh["variables"]["known_hosts"] = str(tmp_path / "not-here" / "known_hosts")
    engine.add_pool_config("pool", "ssh", ssh)  # files absent here: fine for the API

    assert "ssh" in engine.list_pool_configs("pool")["configs"]
    assert not (tmp_path / "not-here").exists()


# ----------------------------------------------------------------------------- nmt-wizard's keys
# (issue 13). Pool files written from the keys of the reference (§1.6), not copied ones.


def nmtwizard_ssh_pool(name="JSgpu", **changes) -> dict:
    """An ssh pool in nmt-wizard's spelling: module, visibility, privateKey at the top level,
    requirements, docker.mount, disabled, and HEAD's per-server steering keys."""
    pool = {
        "name": name,
        "description": "GPU training server",
        "visibility": ["JS"],
        "module": "services.ssh",
        "variables": {
            "server_pool": [
                {
                    "name": "morpheus",
                    "host": "gpu-01",
                    "port": 2222,
                    "gpus": [0, 1],
                    "ncpus": 4,
                    "login": "root",
                    "log_dir": "/share/inftraining_logs",
                    "priority": 2,
                    "only_gpu_task": True,
                    "entities": {"JS": True, "SA": False},
                },
                {
                    "host": "gpu-01",
                    "port": 2223,
                    "gpus": [1, 2, 3],
                    "ncpus": 6,
                    "login": "root",
                    "log_dir": "/share/inftraining_logs",
                    "entities": ["JS"],
                },
            ]
        },
        "requirements": {"free_disk_space": {"/share": 50}, "free_gpu_memory": 8000},
        "privateKey": "credentials/id_rsa",
        "docker": {"mount": ["/mnt/corpus:/root/corpus"], "envvar": {}},
        "disabled": False,
    }
    pool.update(changes)
    return pool


def test_an_nmtwizard_ssh_pool_file_loads_unchanged(tmp_path, monkeypatch):
    from nmtwizard.services import get_service_class

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    directory = write_config(tmp_path / "config", nmtwizard_ssh_pool(), NMTWIZARD_DEFAULT)

    config = load_pool(directory, "JSgpu")

    assert config.service == "ssh"
    assert not config.disabled and config.unusable is None
    assert [h.name for h in config.hosts] == ["morpheus", "gpu-01:2223"]
    assert config.hosts[0].params["priority"] == 2
    assert config.hosts[0].params["entities"] == {"JS": True, "SA": False}
    assert config.data["docker"]["mount"] == ["/mnt/corpus:/root/corpus"]
    assert config.data["docker"]["envvar"] == {
        "specific": {"nmtwizard/google_translate": {"credentials": "{}"}}
    }
    service = get_service_class("ssh")(config)
    assert service.key_file(config.hosts[0]) == "credentials/id_rsa"  # top-level privateKey
    assert service.known_hosts(config.hosts[0]) == str(tmp_path / "home/.ssh/known_hosts")


def test_top_level_pkey_is_an_ssh_credential(tmp_path):
    from nmtwizard.services import get_service_class

    pool = nmtwizard_ssh_pool(pkey="MIIEow...")
    del pool["privateKey"]
    config = load_pool(write_config(tmp_path, pool, NMTWIZARD_DEFAULT), "JSgpu")
    service = get_service_class("ssh")(config)
    assert service.credential(config.hosts[1], "pkey") == "MIIEow..."
    assert service.key_file(config.hosts[1]) is None


@pytest.mark.parametrize("value", [1, True])
def test_disabled_pool_loads_and_says_so(tmp_path, value):
    config = load_pool(write_config(tmp_path, fake_pool() | {"disabled": value}), "pool")
    assert config.disabled is True


@pytest.mark.parametrize(
    ("module", "what"),
    [
        ("services.ec2", "AWS EC2 instances"),
        ("services.nova", "OpenStack Nova instances"),
        ("services.torque", "a Torque cluster"),
    ],
)
def test_ec2_nova_torque_pools_load_as_unusable(tmp_path, module, what):
    pool = {
        "name": "ec2",
        "description": "Instance on AWS EC2",
        "module": module,
        "maxInstance": 100,
        "variables": {
            "awsRegion": "us-east-1",
            "template_pool": [{"name": "P2-1", "maxInstances": 2, "logDir": "logs"}],
        },
        "corpus": {"bucket": "training", "mount": "/home/ec2-user/corpus"},
        "docker": {"mount": ["/home/ec2-user/corpus:/root/corpus"]},
        "disabled": 0,
    }
    config = load_pool(write_config(tmp_path, pool, NMTWIZARD_DEFAULT), "ec2")
    reason = f"module {module} ({what}) has no SNW service; " + (
        "use services.ssh (or service ssh, local)"
    )
    assert config.service == "invalid"
    assert config.hosts == []
    assert config.unusable == reason
    assert config.description == f"**INVALID CONFIG: {reason}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"requirements": {"free_gpu_memory": "8000"}},
            "key requirements.free_gpu_memory: expected int, got string",
        ),
        (
            {"requirements": {"free_gpu_memory": -1}},
            "key requirements.free_gpu_memory: must be at least 0",
        ),
        (
            {"requirements": {"free_disk_space": 5000}},
            'key requirements.free_disk_space: expected {"<path on the host>": GB}, got number',
        ),
        (
            {"requirements": {"free_disk_space": {"/share": "5G"}}},
            "key requirements.free_disk_space./share: expected a non-negative number of GB",
        ),
        (
            {"requirements": {"free_disk_space": {"": 5}}},
            "key requirements.free_disk_space.: expected a path on the host",
        ),
        (
            {"requirements": {"free_cpu": 2}},
            "key requirements.free_cpu: unknown (free_gpu_memory, free_disk_space)",
        ),
        ({"requirements": [8000]}, "key requirements: expected dict, got array"),
        ({"visibility": "JS"}, "key visibility: expected list, got string"),
        ({"visibility": ["JSX"]}, "key visibility[0]: expected an entity code (two letters)"),
        ({"privateKey": ""}, "key privateKey: must not be empty"),
        ({"privateKey": ["id_rsa"]}, "key privateKey: expected str, got array"),
        ({"pkey": 12}, "key pkey: expected str, got number"),
        ({"disabled": 2}, "key disabled: expected true/false (or 1/0)"),
        ({"disabled": "yes"}, "key disabled: expected bool, got string"),
        (
            {"docker": {"envvar": {"specific": []}}},
            "key docker.envvar.specific: expected object (as in default.json), got array",
        ),
        (
            {"docker": {"envvar": {"specific": {"img": "A=1"}}}},
            "key docker.envvar.specific.img: expected dict, got string",
        ),
        (
            {"docker": {"envvar": {"specific": {"img": {"A": {"b": 1}}}}}},
            "key docker.envvar.specific.img.A: expected a string, got object",
        ),
        ({"module": "services.slurmish"}, "key service: unknown service 'slurmish'"),
    ],
)
def test_nmtwizard_key_errors_name_file_and_key(tmp_path, change, message):
    directory = write_config(tmp_path, nmtwizard_ssh_pool(**change), NMTWIZARD_DEFAULT)
    with pytest.raises(ConfigError) as info:
        load_pool(directory, "JSgpu")
    assert str(info.value) == f"{directory / 'JSgpu.json'}: {message}"


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"priority": "high"}, "key variables.server_pool[0].priority: expected int, got string"),
        ({"priority": True}, "key variables.server_pool[0].priority: expected int, got boolean"),
        (
            {"only_gpu_task": 1},
            "key variables.server_pool[0].only_gpu_task: expected bool, got number",
        ),
        ({"entities": "JS"}, "key variables.server_pool[0].entities: expected dict, got string"),
        (
            {"entities": ["J1"]},
            "key variables.server_pool[0].entities: 'J1' is not an entity code (two letters)",
        ),
        (
            {"entities": {"JS": "yes"}},
            "key variables.server_pool[0].entities.JS: expected true or false",
        ),
    ],
)
def test_server_steering_key_errors_name_file_and_key(tmp_path, server, message):
    pool = nmtwizard_ssh_pool()
    pool["variables"]["server_pool"][0].update(server)
    directory = write_config(tmp_path, pool, NMTWIZARD_DEFAULT)
    with pytest.raises(ConfigError) as info:
        load_pool(directory, "JSgpu")
    assert str(info.value) == f"{directory / 'JSgpu.json'}: {message}"


def test_type_mismatch_with_default_stays_an_error_unlike_nmtwizard(tmp_path):
    """nmt-wizard let default.json win silently on a type mismatch; SNW names the key. The
    templates' own keys merge cleanly (checked above with docker.envvar)."""
    pool = nmtwizard_ssh_pool(callback_url=["http://x"])
    directory = write_config(tmp_path, pool, NMTWIZARD_DEFAULT)
    with pytest.raises(ConfigError, match=r"JSgpu\.json: key callback_url: expected string"):
        load_pool(directory, "JSgpu")


def test_a_disabled_pool_is_listed_as_disabled_and_refuses_launches(engine, tmp_path, launch):
    engine.sync_pool_configs(write_config(tmp_path, fake_pool() | {"disabled": 1}))

    assert engine.describe_pool("pool")["disabled"] is True
    with pytest.raises(InvalidRequest) as info:
        launch()
    assert str(info.value) == "pool 'pool' is disabled (\"disabled\" in its configuration)"
    assert engine.list_tasks() == []


def test_the_worker_of_a_disabled_pool_schedules_nothing(engine, config_dir, launch, make_worker):
    engine.sync_pool_configs(config_dir)
    [task_id] = launch()  # queued while the pool was open
    pool = json.loads((config_dir / "pool.json").read_text())
    (config_dir / "pool.json").write_text(json.dumps(pool | {"disabled": True}))

    worker = make_worker()
    for _ in range(20):
        worker.run_once()
    worker.wait_idle()

    assert engine.get_task(task_id)["status"] == "queued"
    assert engine.describe_pool("pool")["usage"] == {"gpus": 0, "cpus": 0}
    assert engine.describe_pool("pool")["disabled"] is True


def test_an_ec2_pool_is_listed_unusable_its_worker_idles(engine, tmp_path, launch, make_worker):
    pool = {
        "name": "pool",
        "description": "Instance on AWS EC2",
        "module": "services.ec2",
        "variables": {"template_pool": [{"name": "P2-1", "maxInstances": 2}]},
    }
    directory = write_config(tmp_path, pool)
    engine.sync_pool_configs(directory)
    reason = "module services.ec2 (AWS EC2 instances) has no SNW service; " + (
        "use services.ssh (or service ssh, local)"
    )

    with pytest.raises(InvalidRequest) as info:
        launch(ngpus=0)
    assert str(info.value) == f"pool 'pool' cannot run tasks: {reason}"
    with pytest.raises(InvalidRequest, match=r"cannot run tasks: module services\.ec2"):
        engine.check_pool("pool", {})
    worker = make_worker(directory=directory)
    for _ in range(10):
        worker.run_once()
    [described] = engine.list_pools()
    assert described["description"] == f"**INVALID CONFIG: {reason}"
    assert described["unusable"] == reason
    assert described["disabled"] is False
    assert described["capacity"] == {"gpus": 0, "cpus": 0}
    assert described["hosts"] == []
    assert described["workers"] == [worker.worker_id]


def test_the_shared_base_is_published_and_replaced_only_when_every_pool_stays_valid(
    engine, config_dir
):
    engine.sync_pool_configs(config_dir)
    assert engine.get_base_config() == DEFAULT
    engine.set_base_config(json.dumps({**DEFAULT, "callback_interval": 30}))
    assert engine.get_base_config()["callback_interval"] == 30
    engine.add_pool_config("pool", "named", fake_pool())
    assert engine.configs.load("pool", "named").data["callback_interval"] == 30

    for bad, message in (
        ({**DEFAULT, "variables": []}, "configuration 'base' of pool 'pool': key variables"),
        ([1, 2], "the base configuration: the top level must be a JSON object"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            engine.set_base_config(bad)
    with pytest.raises(ConfigError, match="the base configuration: invalid JSON"):
        engine.set_base_config("{nope")
    assert engine.get_base_config()["callback_interval"] == 30


def test_a_posted_base_survives_process_starts_until_default_json_changes(
    engine, config_dir, redis_url, make_worker
):
    engine.sync_pool_configs(config_dir)
    engine.set_base_config({**DEFAULT, "callback_interval": 30})

    # another launcher process (a gunicorn worker, a recycle, a replica) and the pool's worker
    Engine.from_url(redis_url).sync_pool_configs(config_dir)
    make_worker()
    assert engine.get_base_config()["callback_interval"] == 30
    engine.add_pool_config("pool", "named", fake_pool())
    assert engine.configs.load("pool", "named").data["callback_interval"] == 30

    # the same file laid out differently is not a change
    (config_dir / "default.json").write_text(json.dumps(DEFAULT, indent=4, sort_keys=True))
    Engine.from_url(redis_url).sync_pool_configs(config_dir)
    assert engine.get_base_config()["callback_interval"] == 30

    # an edited default.json wins, and the posted base is gone for good
    (config_dir / "default.json").write_text(json.dumps({**DEFAULT, "callback_interval": 45}))
    Engine.from_url(redis_url).sync_pool_configs(config_dir)
    assert engine.get_base_config()["callback_interval"] == 45
    engine.add_pool_config("pool", "named", fake_pool())
    assert engine.configs.load("pool", "named").data["callback_interval"] == 45
    (config_dir / "default.json").write_text(json.dumps(DEFAULT))
    Engine.from_url(redis_url).sync_pool_configs(config_dir)
    assert engine.get_base_config()["callback_interval"] == 60


def test_a_configuration_selected_while_the_base_is_checked_is_checked_too(
    engine, config_dir, redis_url, monkeypatch
):
    """The base is validated against every pool and then written: a configuration selected in
    between (valid over the old base, not over the new one) makes the replacement check again
    and fail, instead of leaving a pool whose worker cannot load its configuration."""
    engine.sync_pool_configs(config_dir)
    other = Engine.from_url(redis_url)  # another launcher process
    check = pool_config.parse_pool_config
    selected = []

    def select_meanwhile(data, source, default=None):
        if not selected:
            selected.append(True)
            other.add_pool_config("pool", "named", {**fake_pool(), "disabled": 0})
            other.select_pool_config("pool", "named")
        return check(data, source, default)

    monkeypatch.setattr(pool_config, "parse_pool_config", select_meanwhile)
    message = "configuration 'named' of pool 'pool': key disabled: expected boolean"
    with pytest.raises(ConfigError, match=re.escape(message)):
        engine.set_base_config({**DEFAULT, "disabled": False})

    assert engine.get_base_config() == DEFAULT
    assert engine.configs.load("pool").data["disabled"] == 0


def _ssh_pool(tmp_path, **variables) -> dict:
    key = tmp_path / "id_ed25519"
    key.write_text("not read before a connection")
    server = {"host": "gpu1", "gpus": [0], "ncpus": 2, "work_dir": "/srv/snw"}
    return {
        "name": "pool",
        "description": "ssh pool",
        "service": "ssh",
        "variables": {"key_filename": str(key), "server_pool": [server], **variables},
    }


def _ssh_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "nmtwizard.services.ssh" and r.levelno == logging.WARNING
    ]


def test_a_worker_warns_once_which_known_hosts_an_ssh_pool_falls_back_to(
    engine, tmp_path, monkeypatch, caplog, make_worker
):
    """nmt-wizard pool files name no known_hosts: the worker user's is used, and said so."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("")
    monkeypatch.setenv("HOME", str(home))
    directory = write_config(tmp_path / "ssh", _ssh_pool(tmp_path))

    with caplog.at_level(logging.WARNING):
        make_worker(directory=directory)

    assert _ssh_warnings(caplog) == [
        f"pool pool names no known_hosts: host keys are checked against "
        f"{tmp_path}/home/.ssh/known_hosts (the worker user's)"
    ]
    assert engine.describe_pool("pool")["known_hosts"] == {"gpu1": "~/.ssh/known_hosts"}


def test_an_ssh_pool_naming_its_known_hosts_starts_without_warning(
    engine, tmp_path, caplog, make_worker
):
    known_hosts = tmp_path / "pool_known_hosts"
    known_hosts.write_text("")
    pool = _ssh_pool(tmp_path, known_hosts=str(known_hosts))

    with caplog.at_level(logging.WARNING):
        make_worker(directory=write_config(tmp_path / "ssh", pool))

    assert _ssh_warnings(caplog) == []
    assert engine.describe_pool("pool")["known_hosts"] == {"gpu1": f"{tmp_path}/pool_known_hosts"}
