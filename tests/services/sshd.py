"""Real OpenSSH servers on 127.0.0.1 that play the GPU hosts of the ``remote_test`` pool.

Each host is an ``sshd`` (Debian's openssh-server) with its own host key, port and working
root, accepting one client key generated for the test session. Nothing is auto-accepted: the
tests hand the engine a known_hosts file listing exactly these host keys. Each host's sessions
have its own ``bin`` directory on ``PATH``, where a test puts stand-ins for the host's programs
(``nvidia-smi``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import free_port

__all__ = ["SSHD", "SshKeys", "SshdHost", "start_hosts"]

SSHD = Path("/usr/sbin/sshd")


def _keygen(path: Path) -> str:
    """Create an ed25519 key pair at ``path`` and return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class SshKeys:
    """The client key the engine logs in with, shared by every host of a session."""

    private_key: Path
    public_key: str

    @classmethod
    def create(cls, directory: Path) -> SshKeys:
        directory.mkdir(parents=True, exist_ok=True)
        private_key = directory / "client_ed25519"
        return cls(private_key, _keygen(private_key))


@dataclass
class SshdHost:
    """One sshd process on 127.0.0.1 with its own host key and working root."""

    name: str
    directory: Path
    client_keys: SshKeys
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    host_public_key: str = ""

    @property
    def root(self) -> Path:
        """Where tasks of this host keep their working directories."""
        return self.directory / "root"

    @property
    def bin(self) -> Path:
        """On the ``PATH`` of the host's sessions (ahead of the system directories)."""
        return self.directory / "bin"

    @property
    def known_hosts_line(self) -> str:
        key_type, key_data = self.host_public_key.split()[:2]
        return f"[127.0.0.1]:{self.port} {key_type} {key_data}"

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(exist_ok=True)
        self.bin.mkdir(exist_ok=True)
        self.host_public_key = _keygen(self.directory / "ssh_host_ed25519_key")
        authorized = self.directory / "authorized_keys"
        authorized.write_text(self.client_keys.public_key + "\n")
        authorized.chmod(0o600)
        (self.directory / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.directory / 'ssh_host_ed25519_key'}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "PrintMotd no",
                    "MaxSessions 50",
                    "MaxStartups 50:30:100",
                    f"SetEnv PATH={self.bin}:/usr/local/bin:/usr/bin:/bin",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )

    def start(self, timeout: float = 10.0) -> SshdHost:
        if not self.host_public_key:
            self.prepare()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(self.directory / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "sshd.log").open("ab"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd {self.name} exited; see {self.directory / 'sshd.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd {self.name} did not listen on port {self.port}")

    def stop(self) -> None:
        """Kill the listening sshd (established sessions and task processes stay)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def start_hosts(directory: Path, count: int) -> tuple[SshKeys, list[SshdHost], Path]:
    """Start ``count`` hosts; return the client keys, the hosts and a known_hosts file."""
    if not SSHD.exists() or not shutil.which("ssh-keygen"):
        raise RuntimeError("openssh-server is not installed (apt-get install openssh-server)")
    keys = SshKeys.create(directory / "client")
    hosts = [SshdHost(f"host{i}", directory / f"host{i}", keys).start() for i in range(count)]
    known_hosts = directory / "known_hosts"
    known_hosts.write_text("".join(host.known_hosts_line + "\n" for host in hosts))
    return keys, hosts, known_hosts
