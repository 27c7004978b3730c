"""Pool configuration: merge over default.json, validation naming file and key, named configs."""

import json
import re

import pytest

from nmtwizard.exceptions import ConfigError, Conflict
from nmtwizard.pool_config import load_all_pools, load_pool, merge_config, ttl_for

from .conftest import DEFAULT, fake_pool, write_config


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
        "key_filename": str(tmp_path / "not-here" / "id_ed25519"),
    }

    with pytest.raises(ConfigError, match=r"variables\.known_hosts: required"):
        engine.add_pool_config("pool", "ssh", ssh)
    ssh["variables"]["known_hosts"] = str(tmp_path / "not-here" / "known_hosts")
    engine.add_pool_config("pool", "ssh", ssh)  # files absent here: fine for the API

    assert "ssh" in engine.list_pool_configs("pool")["configs"]
    assert not (tmp_path / "not-here").exists()


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
