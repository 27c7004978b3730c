"""The shared launcher configuration: environment over ini file, errors that name the key."""

from pathlib import Path

import pytest

from nmtwizard.exceptions import ConfigError
from nmtwizard.launcher_config import load_launcher_config


@pytest.fixture
def ini(tmp_path):
    """Write an ini file and return an environment that points LAUNCHER_CONFIG at it."""

    def write(text: str, **environ: str) -> dict[str, str]:
        path = tmp_path / "settings.ini"
        path.write_text(text)
        return {"LAUNCHER_CONFIG": str(path), **environ}

    return write


def test_defaults_without_file_or_environment():
    config = load_launcher_config({})
    assert config.log_level == "INFO"
    assert config.refresh_counter == 200
    assert config.quarantine_time == 600
    assert config.redis_url is None
    assert config.database_url is None
    assert config.config_dir is None


def test_ini_file_values_are_read(ini, tmp_path):
    (tmp_path / "pools").mkdir()
    config = load_launcher_config(
        ini(
            "[default]\nconfig_dir = pools\nlog_level = debug\nrefresh_counter = 50\n"
            "quarantine_time = 30\n"
            "[redis]\nhost = redis.internal\nport = 6380\ndb = 2\npassword = s3cr:t\n"
            "[database]\nurl = postgres://snw@db/snw\n"
        )
    )
    assert config.config_dir == tmp_path / "pools"  # relative to the ini file
    assert config.log_level == "DEBUG"
    assert config.refresh_counter == 50
    assert config.quarantine_time == 30
    assert config.redis_url == "redis://:s3cr%3At@redis.internal:6380/2"
    assert config.database_url == "postgres://snw@db/snw"


def test_environment_wins_over_the_file(ini, tmp_path):
    env_dir = tmp_path / "from-env"
    env_dir.mkdir()
    config = load_launcher_config(
        ini(
            "[default]\nlog_level = DEBUG\nquarantine_time = 30\n"
            "[redis]\nhost = file-host\n[database]\nurl = sqlite:////tmp/file.db\n",
            LOG_LEVEL="warning",
            QUARANTINE_TIME="5",
            REDIS_URL="redis://env-host:6379/3",
            DATABASE_URL="postgres://env/snw",
            CONFIG_DIR=str(env_dir),
        )
    )
    assert config.log_level == "WARNING"
    assert config.quarantine_time == 5
    assert config.redis_url == "redis://env-host:6379/3"
    assert config.database_url == "postgres://env/snw"
    assert config.config_dir == env_dir


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[default\nlog_level = INFO\n", "not a valid ini file"),
        ("[default]\nrefresh_counter = soon\n", "[default] refresh_counter in"),
        ("[default]\nlog_level = LOUD\n", "[default] log_level in"),
        ("[default]\nconfig_dir = /nonexistent/pools\n", "[default] config_dir in"),
        ("[redis]\nport = 0\n", "[redis] port in"),
        ("[default]\nrefresh_countr = 5\n", "unknown key(s) in [default]: refresh_countr"),
        ("[mongo]\nurl = x\n", "unknown section [mongo]"),
    ],
)
def test_bad_file_values_stop_with_the_key_and_the_file(ini, tmp_path, text, expected):
    with pytest.raises(ConfigError) as excinfo:
        load_launcher_config(ini(text))
    message = str(excinfo.value)
    assert expected in message
    assert str(tmp_path / "settings.ini") in message


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="environment variable QUARANTINE_TIME"):
        load_launcher_config({"QUARANTINE_TIME": "-1"})
    with pytest.raises(ConfigError, match="environment variable REDIS_URL"):
        load_launcher_config({"REDIS_URL": "http://redis"})


def test_missing_ini_file_is_an_error():
    with pytest.raises(ConfigError, match=r"LAUNCHER_CONFIG: file .*missing\.ini does not exist"):
        load_launcher_config({"LAUNCHER_CONFIG": str(Path("/nonexistent/missing.ini"))})


def test_callback_url_from_file_or_environment(ini):
    assert load_launcher_config({"CALLBACK_URL": "http://snw:8000/"}).callback_url == (
        "http://snw:8000"
    )
    config = load_launcher_config(ini("[default]\ncallback_url = https://snw.example.org\n"))
    assert config.callback_url == "https://snw.example.org"
    with pytest.raises(ConfigError, match=r"\[default\] callback_url in"):
        load_launcher_config(ini("[default]\ncallback_url = snw:8000\n"))
