"""The CLI without a launcher: help texts, launch argument rewriting, retry policy."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import click
import pytest

from cli.client import Client
from cli.main import cli
from cli.uploads import rewrite_command


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


@pytest.mark.parametrize("path", [(), *_commands(cli)], ids=lambda p: " ".join(p) or "snw")
def test_every_help_reads(snw_offline, path):
    result = snw_offline(*path, "--help")
    assert result.stdout.startswith("Usage: snw")
    assert "Traceback" not in result.stdout


def test_version(snw_offline):
    assert snw_offline("--version").stdout.startswith("snw, version ")


def test_rewrite_command_inlines_and_uploads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    corpus = tmp_path / "data" / "corpus.txt"
    corpus.write_text("x")
    (tmp_path / "config.json").write_text(json.dumps({"train": str(corpus), "n": 1}))
    (tmp_path / "notes.txt").write_text("/etc/hostname is not a path here")
    command, uploads = rewrite_command(
        ["-c", "@config.json", "train", "./data/corpus.txt", "s3:bucket/x", "@notes.txt", "a/b"]
    )
    assert command == [
        "-c",
        json.dumps({"train": "${TMP_DIR}/corpus.txt", "n": 1}),
        "train",
        "${TMP_DIR}/corpus.txt",
        "s3:bucket/x",
        "/etc/hostname is not a path here",
        "a/b",
    ]
    assert uploads.files == {"corpus.txt": corpus}


def test_rewrite_command_errors(tmp_path):
    with pytest.raises(click.BadParameter, match="no such local file"):
        rewrite_command(["/no/such/file"])
    with pytest.raises(click.BadParameter, match="cannot read"):
        rewrite_command(["@/no/such/config.json"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "f.txt").write_text("1")
    (tmp_path / "b" / "f.txt").write_text("2")
    with pytest.raises(click.BadParameter, match=r"uploaded as f\.txt"):
        rewrite_command([str(tmp_path / "a" / "f.txt"), str(tmp_path / "b" / "f.txt")])


@pytest.fixture
def canned_server():
    """Start a server giving one answer to everything; yields its URL and the request count
    per method."""
    servers = []

    def start(status: int, message: str, headers: dict | None = None):
        hits: dict[str, int] = {}

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                hits[self.command] = hits.get(self.command, 0) + 1
                body = json.dumps({"message": message}).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", hits

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_retries_only_idempotent_requests(canned_server):
    url, hits = canned_server(503, "store unavailable")
    client = Client(url, token="_T_x", timeout=5)
    for method in ("GET", "DELETE", "POST"):
        with pytest.raises(click.ClickException, match="store unavailable"):
            client.json(method, "task/list/-*")
    assert hits == {"GET": 3, "DELETE": 3, "POST": 1}


def test_retry_after_is_never_slept_on(canned_server):
    """A locked-out login answers 429 with Retry-After: 900; urllib3 used to sleep it, twice."""
    limited, limited_hits = canned_server(429, "Too many failed logins", {"Retry-After": "3"})
    busy, busy_hits = canned_server(503, "store unavailable", {"Retry-After": "3"})
    started = time.monotonic()
    with pytest.raises(click.ClickException, match="Too many failed logins"):
        Client(limited, timeout=5).json("GET", "auth/token", auth=("AATRN", "x"))
    with pytest.raises(click.ClickException, match="store unavailable"):
        Client(busy, token="_T_x", timeout=5).json("GET", "task/list/-*")
    assert time.monotonic() - started < 3
    assert limited_hits == {"GET": 1} and busy_hits == {"GET": 3}
