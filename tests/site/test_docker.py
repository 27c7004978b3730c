"""docker/ cannot run here (no Docker engine); keep its files consistent by reading them."""

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def test_compose_services_depend_only_on_defined_services():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on undefined {dependency}"


def test_redis_keeps_an_append_only_file():
    conf = (DOCKER / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert re.search(r"^appendfsync everysec$", conf, re.M)


def test_redis_is_bounded_and_never_evicts():
    """A full Redis refuses writes (the launcher answers 507); it never drops tasks or tokens."""
    conf = (DOCKER / "redis.conf").read_text()
    assert re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    assert re.search(r"^maxmemory \d+[kmg]b$", conf, re.M)
    redis = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]["redis"]
    command = redis["command"]
    assert command[:2] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    assert command[2:] == ["--maxmemory", "${SNW_REDIS_MAXMEMORY:-1gb}"]
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis["volumes"]


def test_images_get_their_secret_from_the_environment():
    compose = (DOCKER / "compose.yaml").read_text()
    assert "SECRET_KEY: ${SNW_SECRET_KEY:?" in compose


def test_dockerfile_copies_only_files_that_exist():
    root = DOCKER.parent
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert source == "." or (root / source).exists(), source


def test_launcher_runs_threaded_workers_for_log_followers():
    """A log follower parks up to 60 s: gthread workers hold hundreds of them (issue 14)."""
    import runpy

    from nmtwizard import defaults

    assert "docker/gunicorn.conf.py" in (DOCKER / "Dockerfile").read_text()
    conf = runpy.run_path(str(DOCKER / "gunicorn.conf.py"))
    assert conf["worker_class"] == "gthread"
    assert conf["workers"] * conf["threads"] >= 200
    assert conf["timeout"] > defaults.MAX_LOG_WAIT
    assert conf["graceful_timeout"] > defaults.MAX_LOG_WAIT


def test_collected_static_files_are_served_without_debug(tmp_path, settings, db):
    """The image runs gunicorn with DEBUG off: the console's CSS and the API docs' assets are
    served from STATIC_ROOT (WhiteNoise), as the Dockerfile's collectstatic leaves them."""
    from django.core.management import call_command
    from django.test import Client

    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", "--noinput", verbosity=0)
    client = Client()  # a new handler: its middleware reads the new STATIC_ROOT

    css = client.get("/static/admin/css/base.css")
    swagger = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")

    assert css.status_code == 200 and b"body" in b"".join(css.streaming_content)
    assert swagger.status_code == 200
    assert client.get("/static/../settings.py").status_code == 404
