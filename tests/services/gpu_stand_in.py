"""A stand-in ``nvidia-smi`` for hosts without a GPU (the only thing the tests mock).

It answers exactly the free-memory query the runner makes
(``--query-gpu=memory.free --format=csv,noheader,nounits -i <id>``) from a table of free MiB
per GPU id written next to it, fails as nvidia-smi does for an unknown id, and records every
call in ``nvidia-smi.calls`` so a test can tell whether it ran.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["install_nvidia_smi", "nvidia_smi_calls", "remove_nvidia_smi"]

_SCRIPT = """#!/bin/sh
here=$(dirname "$0")
echo "$*" >> "$here/nvidia-smi.calls"
if [ "$#" -ne 4 ] || [ "$1" != "--query-gpu=memory.free" ] \\
    || [ "$2" != "--format=csv,noheader,nounits" ] || [ "$3" != "-i" ]; then
    echo "stand-in nvidia-smi: unexpected arguments: $*" >&2
    exit 2
fi
free=$(awk -v id="$4" '$1 == id {print $2}' "$here/gpu_free_mib")
if [ -z "$free" ]; then
    echo "No devices were found" >&2
    exit 6
fi
echo "$free"
"""
_FILES = ("nvidia-smi", "gpu_free_mib", "nvidia-smi.calls")


def install_nvidia_smi(directory: Path, free_mib: dict[str, int]) -> None:
    """Put the stand-in in ``directory`` (a directory on the host's PATH)."""
    (directory / "gpu_free_mib").write_text("".join(f"{g} {m}\n" for g, m in free_mib.items()))
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
