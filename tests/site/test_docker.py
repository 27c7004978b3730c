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


def test_images_get_their_secret_from_the_environment():
    compose = (DOCKER / "compose.yaml").read_text()
    assert "SECRET_KEY: ${SNW_SECRET_KEY:?" in compose


def test_dockerfile_copies_only_files_that_exist():
    root = DOCKER.parent
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert source == "." or (root / source).exists(), source
