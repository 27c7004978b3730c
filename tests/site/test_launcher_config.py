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


# ----------------------------------------------------------------------------- nmt-wizard's
# settings.ini (issue 13): [flask], taskfile_dir, max_log_size, default.json next to the file

NMTWIZARD_SETTINGS = """\
[flask]
debug = false
SQLALCHEMY_DATABASE_URI = postgresql+psycopg2://wizard:p4ss%%word@db.internal:5433/wizard
SQLALCHEMY_TRACK_MODIFICATIONS = False
SECRET_KEY = flask-secret-from-the-ini

[default]
taskfile_dir = taskfiles
log_level = DEBUG
refresh_counter = 200
quarantine_time = 600
max_log_size = 1048576

[redis]
host = localhost
port = 6379
db = 0
"""


def test_an_nmtwizard_settings_ini_is_read_as_it_is(ini, tmp_path):
    config = load_launcher_config(ini(NMTWIZARD_SETTINGS.replace("%%", "%")))

    assert config.database_url == "postgresql://wizard:p4ss%word@db.internal:5433/wizard"
    assert config.secret_key == "flask-secret-from-the-ini"
    assert config.taskfile_dir == tmp_path / "taskfiles"  # relative to the file
    assert config.max_log_size == 1048576
    assert config.log_level == "DEBUG"
    assert config.redis_url == "redis://localhost:6379/0"
    assert config.warnings == (
        f"{tmp_path / 'settings.ini'}: [flask] debug, sqlalchemy_track_modifications ignored: "
        "SNW is not a Flask application (only SQLALCHEMY_DATABASE_URI and SECRET_KEY are read)",
        f"{tmp_path / 'settings.ini'}: [default] taskfile_dir, max_log_size accepted; they take "
        "effect with the task-data storage (until then task logs are capped at 4194304 bytes "
        "and task files are kept in Redis)",
    )


def test_secrets_never_show_in_the_config_repr(ini):
    config = load_launcher_config(
        ini(NMTWIZARD_SETTINGS.replace("%%", "%") + "password = redis-pass\n")
    )
    shown = repr(config)
    for secret in ("p4ss", "flask-secret-from-the-ini", "redis-pass"):
        assert secret not in shown


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:pw@h/db"),
        ("postgres://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql+psycopg2://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("sqlite:////var/lib/wizard/db.sqlite", "sqlite:////var/lib/wizard/db.sqlite"),
        ("sqlite:///data/wizard.db", "sqlite:///{dir}/data/wizard.db"),
    ],
)
def test_sqlalchemy_uris_become_database_urls(ini, tmp_path, uri, expected):
    config = load_launcher_config(ini(f"[flask]\nSQLALCHEMY_DATABASE_URI = {uri}\n"))
    assert config.database_url == expected.format(dir=tmp_path)
    assert config.warnings == ()  # nothing ignored


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mysql://root:hunter2@db/wizard", "unsupported database 'mysql'"),
        ("oracle+cx_oracle://scott:hunter2@db", "unsupported database 'oracle'"),
        ("hunter2", "unsupported database 'none'"),
        ("sqlite://", "an in-memory SQLite database cannot be shared"),
        ("sqlite:///:memory:", "an in-memory SQLite database cannot be shared"),
    ],
)
def test_unusable_sqlalchemy_uris_name_the_key_not_the_password(ini, tmp_path, uri, expected):
    with pytest.raises(ConfigError) as excinfo:
        load_launcher_config(ini(f"[flask]\nSQLALCHEMY_DATABASE_URI = {uri}\n"))
    message = str(excinfo.value)
    assert message.startswith(f"[flask] SQLALCHEMY_DATABASE_URI in {tmp_path / 'settings.ini'}:")
    assert expected in message
    assert "hunter2" not in message


def test_environment_and_database_section_win_over_flask(ini):
    text = NMTWIZARD_SETTINGS.replace("%%", "%")
    config = load_launcher_config(
        ini(text, DATABASE_URL="postgres://env/snw", SECRET_KEY="secret-from-env")
    )
    assert config.database_url == "postgres://env/snw"
    assert config.secret_key == "secret-from-env"
    config = load_launcher_config(ini(text + "[database]\nurl = sqlite:////srv/snw.db\n"))
    assert config.database_url == "sqlite:////srv/snw.db"


def test_no_warning_without_flask_or_deferred_keys(ini):
    assert load_launcher_config(ini("[default]\nlog_level = INFO\n")).warnings == ()
    config = load_launcher_config(ini("[flask]\nSECRET_KEY = s\n"))
    assert config.warnings == () and config.secret_key == "s"


@pytest.mark.parametrize("value", ["big", "0"])
def test_bad_max_log_size_names_the_key(ini, value):
    with pytest.raises(ConfigError, match=r"\[default\] max_log_size in"):
        load_launcher_config(ini(f"[default]\nmax_log_size = {value}\n"))


def test_a_malformed_line_is_reported_by_number_not_by_content(ini):
    with pytest.raises(ConfigError) as excinfo:
        load_launcher_config(ini("[flask]\nSECRET_KEY = fine\nhunter2-secret-line\n"))
    assert "line(s) 3: expected 'key = value'" in str(excinfo.value)
    assert "hunter2" not in str(excinfo.value)
    with pytest.raises(ConfigError) as excinfo:
        load_launcher_config(ini("hunter2 = x\n[flask]\n"))
    assert "line 1: a key before any [section] header" in str(excinfo.value)
    assert "hunter2" not in str(excinfo.value)


def test_pool_files_next_to_the_ini_file_as_in_nmtwizard(ini, tmp_path):
    environ = ini("[default]\nlog_level = INFO\n")
    assert load_launcher_config(environ).config_dir is None  # no default.json there
    (tmp_path / "default.json").write_text("{}")
    assert load_launcher_config(environ).config_dir == tmp_path
    other = tmp_path / "pools"
    other.mkdir()
    assert load_launcher_config({**environ, "CONFIG_DIR": str(other)}).config_dir == other
