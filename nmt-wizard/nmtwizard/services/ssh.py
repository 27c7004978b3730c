"""The ``ssh`` service: tasks on remote GPU hosts over SSH (paramiko), as processes or containers.

Pool configuration (``"service": "ssh"``)::

    "variables": {
        "known_hosts": "/etc/snw/known_hosts",    # default ~/.ssh/known_hosts; never auto-added
        "key_filename": "/etc/snw/id_ed25519",    # or "pkey": "<private key text>"
        "login": "snw",                           # default: the worker's user
        "runtime": "docker",                      # docker | process | auto
        "connect_timeout": 10, "keepalive": 15, "command_timeout": 60, "terminate_grace": 5,
        "python": "python3",
        "server_pool": [
            {"host": "gpu1.example", "port": 22, "gpus": [0, 1, 2, 3], "ncpus": 16,
             "work_dir": "/srv/snw/tasks", "login": "...", "runtime": "...", "key_filename": "...",
             "with_nvidia_docker": false}
        ]
    }

``work_dir`` may be spelled ``log_dir`` (nmt-wizard); ``with_nvidia_docker`` (nmt-wizard's server
parameter) starts GPU containers with ``nvidia-docker`` and ``NV_GPU``; the keys of the image
contract are described in :mod:`nmtwizard.services.hostexec`. As in nmt-wizard, ``privateKey``
(an alias of ``key_filename``), ``key_filename`` and ``pkey`` may also sit at the top level of
the pool file, and a relative key path is relative to the worker's working directory. Without
``known_hosts``, the worker user's ``~/.ssh/known_hosts`` is used (nmt-wizard files name none):
the worker says so in a warning when it loads the configuration, and ``service/describe``
shows the file in force per host; host keys are still verified, never added. Host keys are
checked against ``known_hosts`` with paramiko's RejectPolicy: an unknown or changed key is an
infrastructure error, so the worker quarantines the host. One connection per host is kept and
reused (with keepalives and timeouts) and re-opened when it breaks. The runner script is
copied once per version to ``<work_dir>/.snw/runner-<digest>.py`` (over exec: no SFTP needed);
every request, secrets included, goes to it on stdin.
"""

from __future__ import annotations

import getpass
import io
import json
import logging
import shlex
import threading
from pathlib import Path

import paramiko

from nmtwizard.exceptions import ConfigError, InfrastructureError, OutcomeUnknown
from nmtwizard.services import register
from nmtwizard.services.base import HostSpec
from nmtwizard.services.hostexec import RUNNER_DIGEST, RUNNER_SOURCE, RunnerService

__all__ = ["HostConnection", "SshService"]

log = logging.getLogger(__name__)

_KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)
_WORKER_KNOWN_HOSTS = "~/.ssh/known_hosts"  # when the pool names none, as nmt-wizard's never do


def _load_pkey(text: str) -> paramiko.PKey:
    if "BEGIN" not in text:  # nmt-wizard's pkey: an RSA body without its armour lines
        text = f"-----BEGIN RSA PRIVATE KEY-----\n{text}\n-----END RSA PRIVATE KEY-----\n"
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise ConfigError("pkey: not a readable private key")


class HostConnection:
    """One reused SSH connection to a host; thread-safe, reconnects when it breaks."""

    def __init__(self, service: SshService, host: HostSpec):
        self.service = service
        self.host = host
        self.address = host.params.get("host") or host.name.split(":")[0]
        self.port = int(host.params.get("port", 22))
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self._runner_path: str | None = None
        self._docker: bool | None = None

    def _setting(self, key, default=None):
        return self.service._variable(self.host, key, default)

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.load_host_keys(self.service.known_hosts(self.host))  # never the system's
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        timeout = float(self._setting("connect_timeout", 10))
        kwargs = {
            "hostname": self.address,
            "port": self.port,
            "username": self._setting("login") or getpass.getuser(),
            "timeout": timeout,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
            "allow_agent": False,
            "look_for_keys": False,
        }
        pkey = self.service.credential(self.host, "pkey")
        if pkey:
            kwargs["pkey"] = _load_pkey(pkey)
        else:
            kwargs["key_filename"] = self.service.key_file(self.host)
        where = f"{self.host.name} ({self.address}:{self.port})"
        try:
            client.connect(**kwargs)
        except paramiko.BadHostKeyException:
            client.close()
            raise InfrastructureError(
                f"{where}: host key does not match known_hosts (possible man-in-the-middle)"
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise InfrastructureError(f"{where}: SSH authentication failed") from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise InfrastructureError(
                    f"{where}: unknown host key (not in known_hosts)"
                ) from None
            raise InfrastructureError(f"{where}: SSH error: {exc}") from None
        except (OSError, EOFError) as exc:
            client.close()
            raise InfrastructureError(f"{where}: cannot connect: {exc}") from None
        client.get_transport().set_keepalive(int(self._setting("keepalive", 15)))
        return client

    def client(self) -> paramiko.SSHClient:
        with self._lock:
            transport = self._client.get_transport() if self._client else None
            if transport is None or not transport.is_active():
                self.close_locked()
                self._client = self._connect()
                self._runner_path = None
                self._docker = None
            return self._client

    def close_locked(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    def _drop(self, client: paramiko.SSHClient) -> None:
        with self._lock:
            if self._client is client:
                self.close_locked()

    def execute(
        self, command: str, stdin: bytes, timeout: float, *, idempotent: bool = False
    ) -> tuple[int, bytes, bytes]:
        """Run ``command`` (no secret in it) with ``stdin``; one retry on a stale connection.

        A failure after the command was sent raises OutcomeUnknown (it may have run), unless
        the command is ``idempotent`` (running it again is harmless)."""
        lost = InfrastructureError if idempotent else OutcomeUnknown
        for attempt in (1, 2):
            client = self.client()
            try:
                channel = client.get_transport().open_session(timeout=timeout)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                self._drop(client)
                if attempt == 2:
                    raise InfrastructureError(
                        f"{self.host.name}: SSH session failed: {exc}"
                    ) from None
                continue
            try:
                channel.settimeout(timeout)
                channel.exec_command(command)
                if stdin:
                    channel.sendall(stdin)
                channel.shutdown_write()
                out, err = io.BytesIO(), io.BytesIO()
                while True:
                    data = channel.recv(65536)
                    if not data:
                        break
                    out.write(data)
                while channel.recv_stderr_ready() or not channel.exit_status_ready():
                    data = channel.recv_stderr(65536)
                    if not data:
                        break
                    err.write(data)
                return channel.recv_exit_status(), out.getvalue(), err.getvalue()
            except TimeoutError:
                self._drop(client)
                raise lost(f"{self.host.name}: command timed out") from None
            except (paramiko.SSHException, OSError, EOFError) as exc:
                self._drop(client)
                raise lost(f"{self.host.name}: SSH command failed: {exc}") from None
            finally:
                channel.close()
        raise AssertionError("unreachable")

    def runner_path(self) -> str:
        """Path of the runner on the host, copied there (over exec, no SFTP needed) when this
        version is missing."""
        if self._runner_path and self._client is not None:
            return self._runner_path
        directory = f"{self.service.work_root(self.host).rstrip('/')}/.snw"
        path = f"{directory}/runner-{RUNNER_DIGEST}.py"
        quoted, tmp = shlex.quote(path), shlex.quote(f"{path}.tmp")
        timeout = float(self._setting("command_timeout", 60))
        code, _out, _err = self.execute(f"test -f {quoted}", b"", timeout, idempotent=True)
        if code != 0:
            command = f"mkdir -p {shlex.quote(directory)} && cat > {tmp}.$$ && mv {tmp}.$$ {quoted}"
            code, _out, err = self.execute(command, RUNNER_SOURCE, timeout, idempotent=True)
            if code != 0:
                detail = err.decode(errors="replace").strip()[-300:]
                raise InfrastructureError(f"{self.host.name}: cannot install the runner: {detail}")
        self._runner_path = path
        return path

    def docker_available(self) -> bool:
        if self._docker is None:
            docker = shlex.quote(self.service.docker_binary())
            code, _out, _err = self.execute(f"command -v {docker}", b"", 10)
            self._docker = code == 0
        return self._docker


@register("ssh")
class SshService(RunnerService):
    default_runtime = "docker"

    def __init__(self, config, context=None):
        super().__init__(config, context)
        self._connections = {name: HostConnection(self, host) for name, host in self.hosts.items()}

    def check_config(self) -> None:
        super().check_config()
        where = self.config.source
        for host in self.hosts.values():
            if not (self._variable(host, "work_dir") or self._variable(host, "log_dir")):
                raise ConfigError(f"{where}: key server_pool.{host.name}.work_dir: required")
            if not (self.key_file(host) or self.credential(host, "pkey")):
                raise ConfigError(
                    f"{where}: key variables.key_filename: a key is required "
                    "(key_filename, privateKey or pkey)"
                )

    def validate(self) -> None:
        """The files the configuration names exist on the worker's machine."""
        where = self.config.source
        for host in self.hosts.values():
            known_hosts = self.known_hosts(host)
            if not Path(known_hosts).is_file():
                raise ConfigError(f"{where}: key variables.known_hosts: no file {known_hosts}")
            key = self.key_file(host)
            if key and not Path(key).is_file():
                raise ConfigError(f"{where}: key variables.key_filename: no file {key}")
        if any(not self._variable(host, "known_hosts") for host in self.hosts.values()):
            log.warning(
                "pool %s names no known_hosts: host keys are checked against %s (the worker "
                "user's)",
                self.config.name,
                Path(_WORKER_KNOWN_HOSTS).expanduser(),
            )

    def credential(self, host: HostSpec, key: str) -> str | None:
        """``key`` of the server, else of ``variables``, else of the pool file's top level
        (where nmt-wizard reads ``privateKey`` and ``pkey``)."""
        return self._variable(host, key) or self.config.data.get(key)

    def key_file(self, host: HostSpec) -> str | None:
        return self.credential(host, "key_filename") or self.credential(host, "privateKey")

    def known_hosts(self, host: HostSpec) -> str:
        return self._variable(host, "known_hosts") or str(Path(_WORKER_KNOWN_HOSTS).expanduser())

    def host_key_files(self) -> dict[str, str]:
        """As configured, or ``~/.ssh/known_hosts`` (``~``: the worker user's home, which the
        process publishing the description may not share)."""
        return {
            name: self._variable(host, "known_hosts") or _WORKER_KNOWN_HOSTS
            for name, host in self.hosts.items()
        }

    def work_root(self, host: HostSpec) -> str:
        return self._variable(host, "work_dir") or self._variable(host, "log_dir")

    def connection(self, name: str) -> HostConnection:
        return self._connections[name]

    def docker_available(self, host: HostSpec) -> bool:
        return self._connections[host.name].docker_available()

    def call_runner(self, host: HostSpec, action: str, request: dict, timeout: float) -> dict:
        connection = self._connections[host.name]
        python = shlex.quote(self._variable(host, "python", "python3"))
        command = f"{python} {shlex.quote(connection.runner_path())} {action}"
        code, out, err = connection.execute(command, json.dumps(request).encode(), timeout)
        try:
            return json.loads(out)
        except ValueError:
            detail = err.decode(errors="replace").strip()[-500:]
            raise InfrastructureError(
                f"{host.name}: runner {action} failed ({code}): {detail}"
            ) from None

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
