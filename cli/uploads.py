"""Launch-time rewriting of the docker command, as nmt-wizard's client did.

* ``@path`` is replaced by the content of the file (``-c @config.json`` inlines the config);
* an argument starting with ``{`` is JSON: string values in it that are absolute paths of
  existing files or directories are uploaded and rewritten;
* an absolute path must exist and is uploaded; a relative path containing ``/`` (and no ``:``,
  so ``s3:bucket/x`` or ``launcher:x`` are left alone) is uploaded when it exists.

Uploaded files travel as multipart fields named by their basename (``dir/file`` for the files
of a directory); the argument becomes ``${TMP_DIR}/<name>``, which the worker maps to the
directory the files are copied to on the host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

__all__ = ["TMP_DIR", "Uploads", "rewrite_command"]

TMP_DIR = "${TMP_DIR}"


@dataclass
class Uploads:
    """Local files to send with the launch: multipart field name -> path."""

    files: dict[str, Path] = field(default_factory=dict)

    def add(self, path: Path) -> str:
        """Register ``path`` (a file, or every file of a directory); its in-task path."""
        path = path.resolve()
        if path.is_dir():
            members = sorted(p for p in path.rglob("*") if p.is_file())
            if not members:
                raise click.BadParameter(f"{path}: empty directory, nothing to upload")
            for member in members:
                self._put(f"{path.name}/{member.relative_to(path).as_posix()}", member)
        else:
            self._put(path.name, path)
        return f"{TMP_DIR}/{path.name}"

    def _put(self, name: str, path: Path) -> None:
        known = self.files.get(name)
        if known is not None and known != path:
            raise click.BadParameter(
                f"two different local files would be uploaded as {name}: {known} and {path}"
            )
        self.files[name] = path

    def local(self, arg: str) -> str:
        """``arg``, or its in-task path when it names a local file (which is then uploaded)."""
        path = _local_path(arg)
        return arg if path is None else self.add(path)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())


def _local_path(arg: str) -> Path | None:
    """The local file or directory ``arg`` names, or None when it is not a local path."""
    if arg.startswith("/"):
        path = Path(arg)
        if not path.exists():
            raise click.BadParameter(
                f"{arg}: no such local file (absolute paths in the command are uploaded)"
            )
        return path
    if "/" in arg and ":" not in arg and "\n" not in arg:
        path = Path(arg).expanduser()
        if path.exists():
            return path
    return None


def _rewrite_json(value: Any, uploads: Uploads) -> Any:
    if isinstance(value, dict):
        return {k: _rewrite_json(v, uploads) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_json(v, uploads) for v in value]
    if isinstance(value, str) and value.startswith("/") and Path(value).exists():
        return uploads.add(Path(value))
    return value


def _inline(arg: str) -> str:
    try:
        return Path(arg[1:]).expanduser().read_text()
    except OSError as exc:
        raise click.BadParameter(f"{arg}: cannot read {arg[1:]}: {exc.strerror}") from None


def rewrite_command(args: list[str] | tuple[str, ...]) -> tuple[list[str], Uploads]:
    """The command to send, and the files to upload with it (see the module docstring)."""
    uploads = Uploads()
    command = []
    for arg in args:
        inlined = arg.startswith("@")
        if inlined:
            arg = _inline(arg)
        data = None
        if arg.lstrip().startswith("{"):
            try:
                data = json.loads(arg)
            except ValueError:
                data = None
        if isinstance(data, dict):
            command.append(json.dumps(_rewrite_json(data, uploads)))
        elif inlined or (path := _local_path(arg)) is None:
            command.append(arg)
        else:
            command.append(uploads.add(path))
    return command, uploads
