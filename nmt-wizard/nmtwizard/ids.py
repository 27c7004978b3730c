"""Task ids ``TRID_XXYY_NAME_NN_UUID`` (nmt-wizard's format) and their parsing.

* ``TRID``: the trainer id (entity code + user code); letters and digits only, so ``_`` always
  separates fields (nmt-wizard broke on trainer ids containing ``_``).
* ``XXYY``: source + target language from the task config, else the parent's, else ``xxyy``.
* ``NAME``: the given name, else the parent's, else a generated ``AdjectiveNoun``.
* ``NN``: two-digit iteration number (see :func:`iteration_number`).
* ``UUID``: a random hex suffix; with a parent, ``-`` and the first 5 characters of the parent's
  suffix are appended. Types other than ``train`` append ``_<type word>``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from nmtwizard.exceptions import InvalidRequest

__all__ = [
    "TYPE_SUFFIXES",
    "TaskIdParts",
    "build_task_id",
    "clean_name",
    "generate_name",
    "is_valid_task_id",
    "iteration_number",
    "language_pair",
    "parse_task_id",
]

BASE_LENGTH = 47
PARENT_SUFFIX_LENGTH = 5
TYPE_SUFFIXES = {
    "train": "",
    "prepr": "preprocess",
    "trans": "trans",
    "relea": "release",
    "vocab": "vocab",
}
_SUFFIX_TO_TYPE = {word: kind for kind, word in TYPE_SUFFIXES.items() if word}
_TRID = re.compile(r"^[A-Za-z0-9]{1,10}$")
_LANG = re.compile(r"^[a-z]{2}$")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9-]")
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

_ADJECTIVES = [
    "Agile",
    "Bold",
    "Brave",
    "Bright",
    "Calm",
    "Clever",
    "Cosmic",
    "Crisp",
    "Daring",
    "Eager",
    "Fancy",
    "Fluent",
    "Gentle",
    "Golden",
    "Happy",
    "Humble",
    "Jolly",
    "Keen",
    "Lively",
    "Lucky",
    "Mellow",
    "Nimble",
    "Noble",
    "Proud",
    "Quick",
    "Quiet",
    "Rapid",
    "Shiny",
    "Silent",
    "Smart",
    "Snappy",
    "Solid",
    "Steady",
    "Sunny",
    "Swift",
    "Tidy",
    "Vivid",
    "Witty",
    "Zesty",
]
_NOUNS = [
    "Badger",
    "Beacon",
    "Comet",
    "Condor",
    "Dolphin",
    "Falcon",
    "Ferret",
    "Gecko",
    "Glacier",
    "Harbor",
    "Heron",
    "Jaguar",
    "Kestrel",
    "Koala",
    "Lantern",
    "Lynx",
    "Meadow",
    "Meteor",
    "Nebula",
    "Otter",
    "Panda",
    "Pebble",
    "Puffin",
    "Quokka",
    "Raven",
    "River",
    "Robin",
    "Salmon",
    "Sparrow",
    "Spruce",
    "Tiger",
    "Tundra",
    "Walrus",
    "Willow",
    "Wombat",
    "Yak",
    "Zebra",
]


@dataclass(frozen=True)
class TaskIdParts:
    trainer_id: str
    xxyy: str
    name: str
    nn: int
    uuid: str
    parent_uuid: str | None
    task_type: str


def is_valid_task_id(task_id: str) -> bool:
    """True for strings that may be task ids (used to refuse junk before touching Redis)."""
    return bool(_TASK_ID.match(task_id or ""))


def generate_name(rng: secrets.SystemRandom | None = None) -> str:
    """A readable ``AdjectiveNoun`` model name of at most 15 characters."""
    rng = rng or secrets.SystemRandom()
    while True:
        name = rng.choice(_ADJECTIVES) + rng.choice(_NOUNS)
        if len(name) <= 15:
            return name


def clean_name(name: str) -> str:
    """Keep a user-given name usable inside an id: letters, digits and ``-``, 1-15 chars."""
    cleaned = _NAME_CHARS.sub("", name)[:15]
    if not cleaned:
        raise InvalidRequest(f"invalid model name {name!r}")
    return cleaned


def build_task_id(
    trainer_id: str,
    task_type: str = "train",
    *,
    xxyy: str | None = None,
    name: str | None = None,
    nn: int = 1,
    parent_id: str | None = None,
    suffix: str | None = None,
    unique: str | None = None,
) -> str:
    """Build a task id; ``suffix`` overrides the type word (exec tasks: ``score``, ...)."""
    if not _TRID.match(trainer_id or ""):
        raise InvalidRequest(f"invalid trainer id {trainer_id!r}: letters and digits only")
    if xxyy is None or not re.match(r"^[a-z]{4}$", xxyy):
        xxyy = "xxyy"
    name = clean_name(name) if name else generate_name()
    if not 0 <= nn <= 99:
        raise InvalidRequest(f"iteration number {nn} out of range 0-99")
    unique = unique or uuid.uuid4().hex
    base = f"{trainer_id}_{xxyy}_{name}_{nn:02d}_{unique}"
    if parent_id:
        parent_uuid = parse_task_id(parent_id).uuid
        base = base[: BASE_LENGTH - PARENT_SUFFIX_LENGTH - 1]
        base = f"{base}-{parent_uuid[:PARENT_SUFFIX_LENGTH]}"
    else:
        base = base[:BASE_LENGTH]
    word = suffix if suffix is not None else TYPE_SUFFIXES.get(task_type, task_type)
    if word:
        if not re.match(r"^[a-z0-9]{1,16}$", word):
            raise InvalidRequest(f"invalid task id suffix {word!r}")
        base = f"{base}_{word}"
    return base


def iteration_number(kind: str, parent: TaskIdParts | None) -> int:
    """nmt-wizard's ``NN`` of a new task of ``kind`` (a type or exec suffix) under ``parent``.

    Without a parent: 0 for ``vocab``, else 1. Under a parent: the parent's, plus one for a
    ``prepr`` step and for a ``train`` that does not follow a ``prepr`` (so the training a
    preprocessing step prepared keeps its number, and each new iteration counts one up).
    """
    if parent is None:
        return 0 if kind == "vocab" else 1
    if kind == "prepr" or (kind == "train" and parent.task_type != "prepr"):
        return parent.nn + 1
    return parent.nn


def parse_task_id(task_id: str) -> TaskIdParts:
    """Split an id built by :func:`build_task_id`; raise InvalidRequest on anything else."""
    parts = task_id.split("_")
    task_type = "train"
    if len(parts) == 6:
        word = parts.pop()
        task_type = _SUFFIX_TO_TYPE.get(word, "exec")
    if len(parts) != 5 or not parts[3].isdigit():
        raise InvalidRequest(f"{task_id!r} is not a task id of the form TRID_XXYY_NAME_NN_UUID")
    trid, xxyy, name, nn, unique = parts
    parent_uuid = None
    if "-" in unique:
        unique, parent_uuid = unique.split("-", 1)
    return TaskIdParts(trid, xxyy, name, int(nn), unique, parent_uuid, task_type)


def language_pair(config: dict | None) -> str | None:
    """``source + target`` from a task config (``-c`` JSON) when both are 2-letter codes."""
    if not isinstance(config, dict):
        return None
    source, target = config.get("source"), config.get("target")
    if (
        isinstance(source, str)
        and isinstance(target, str)
        and _LANG.match(source)
        and _LANG.match(target)
    ):
        return source + target
    return None
