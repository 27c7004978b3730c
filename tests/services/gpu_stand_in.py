"""A stand-in ``nvidia-smi`` for hosts without a GPU (the only thing the tests mock).

It answers exactly the free-memory query the runner makes
(``--query-gpu=index,memory.free --format=csv,noheader,nounits -i <id>,<id>…``) from a table of
free MiB per GPU id written next to it (one ``<id>, <MiB>`` line per id, as nvidia-smi), fails
as nvidia-smi does for an unknown id, and records every call in ``nvidia-smi.calls`` so a test
can tell whether it ran. Installed with ``hang_seconds``, it plays a hung driver: it sleeps
before answering, with the sleeping process's pid in ``nvidia-smi.pid``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["install_nvidia_smi", "nvidia_smi_calls", "remove_nvidia_smi"]

_SCRIPT = """#!/bin/sh
here=$(dirname "$0")
echo "$*" >> "$here/nvidia-smi.calls"
if [ "$#" -ne 4 ] || [ "$1" != "--query-gpu=index,memory.free" ] \\
    || [ "$2" != "--format=csv,noheader,nounits" ] || [ "$3" != "-i" ]; then
    echo "stand-in nvidia-smi: unexpected arguments: $*" >&2
    exit 2
fi
if [ -s "$here/nvidia-smi.hang" ]; then
    sleep "$(cat "$here/nvidia-smi.hang")" &
    echo "$!" > "$here/nvidia-smi.pid"
    wait
fi
for id in $(echo "$4" | tr ',' ' '); do
    free=$(awk -v id="$id" '$1 == id {print $2}' "$here/gpu_free_mib")
    if [ -z "$free" ]; then
        echo "No devices were found" >&2
        exit 6
    fi
    echo "$id, $free"
done
"""
_FILES = ("nvidia-smi", "gpu_free_mib", "nvidia-smi.calls", "nvidia-smi.hang", "nvidia-smi.pid")


def install_nvidia_smi(directory: Path, free_mib: dict[str, int], hang_seconds: int = 0) -> None:
    """Put the stand-in in ``directory`` (a directory on the host's PATH)."""
    (directory / "gpu_free_mib").write_text("".join(f"{g} {m}\n" for g, m in free_mib.items()))
    (directory / "nvidia-smi.hang").write_text(str(hang_seconds) if hang_seconds else "")
    script = directory / "nvidia-smi"
    script.write_text(_SCRIPT)
    script.chmod(0o755)


def nvidia_smi_calls(directory: Path) -> list[str]:
    """The argument lists the stand-in in ``directory`` was called with, in order."""
    calls = directory / "nvidia-smi.calls"
    return calls.read_text().splitlines() if calls.exists() else []


def remove_nvidia_smi(directory: Path) -> None:
    for name in _FILES:
        (directory / name).unlink(missing_ok=True)
