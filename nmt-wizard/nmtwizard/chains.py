"""Chains: the tasks one launch creates, by nmt-wizard's launch rules (``task/launch``).

The launch command names one task type (its first known token: ``train``, ``trans``,
``preprocess``, ``release``, ``buildvocab``; anything in ``exec_mode``). Around that task:

* **prepr split**: from image tag 1.4.0 (semver, optional leading ``v``; off with
  ``nochainprepr``) a ``train`` is preceded by a ``prepr`` task: the train command up to its
  ``train`` token, then ``--no_push preprocess --build_model``, on CPUs only. The train then
  loses its ``-c`` config and takes the prepr task as its ``-m`` model.
* **iterations**: each training is the ``-m`` parent of the next, each with its prepr step.
* **totranslate**: after each main task, ``trans`` children (priority + 1) on its model,
  ``<MODEL>`` in their outputs replaced by its id; from tag 1.8.0 (unless
  ``notransasrelease``) they run ``--as_release`` on CPUs in one task, otherwise on one GPU
  each with the inputs split over the requested GPUs. Unlike nmt-wizard, a translation (or
  TU-miner task) reading an input in ``${TMP_DIR}`` (a local input the client uploaded) gets
  the launch's uploads: nmt-wizard gave it none, so such an input was never there.
* **toscore** / **totuminer**: per translation producing the named outputs, one ``score`` /
  ``tuminer`` utility task (priority + 2). They read those outputs as declared ``inputs``
  (served by :meth:`nmtwizard.api.Engine.get_file` from the translation's declared
  ``outputs``), where nmt-wizard made them climb out of their task with ``launcher:../<id>/``.

Every task's ``content`` carries ``exec_mode`` and ``support_statistics`` (tag >= 1.17.0).
This module only plans; the engine validates the pool side and stores the plan atomically.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nmtwizard import ids
from nmtwizard.exceptions import InvalidRequest
from nmtwizard.ids import TaskIdParts
from nmtwizard.task import task_type_from_command

__all__ = [
    "LAUNCHER_STORAGE",
    "SCORE_IMAGE",
    "TUMINER_IMAGE",
    "ChainRequest",
    "PlannedTask",
    "config_of",
    "model_of",
    "plan_chain",
    "tag_at_least",
    "with_model",
]

PREPR_SPLIT_FROM = (1, 4, 0)
TRANS_AS_RELEASE_FROM = (1, 8, 0)
STATISTICS_FROM = (1, 17, 0)
SCORE_IMAGE = "nmtwizard/score"
TUMINER_IMAGE = "nmtwizard/tuminer"
UTILITY_TAG = "latest"
LAUNCHER_STORAGE = "launcher:"
MODEL_PLACEHOLDER = "<MODEL>"
UPLOADS_DIR = "${TMP_DIR}"

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def tag_at_least(tag: str, version: tuple[int, int, int]) -> bool:
    """True when ``tag`` (``v`` prefix allowed) is semver and not below ``version``.

    A tag that is not semver (``latest``, ``v1``) enables no version-gated feature; a
    pre-release precedes its release (``1.4.0-rc1`` < ``1.4.0``).
    """
    match = _SEMVER.match(tag[1:] if tag.startswith("v") else tag)
    if not match:
        return False
    found = tuple(int(part) for part in match.groups()[:3])
    return found > version or (found == version and match.group(4) is None)


def config_of(command: list[str]) -> dict | None:
    """The JSON config of the first ``-c/--config`` option (None when absent or not JSON)."""
    for index, token in enumerate(command[:-1]):
        if token in ("-c", "--config"):
            try:
                config = json.loads(command[index + 1])
            except ValueError:
                return None
            return config if isinstance(config, dict) else None
    return None


def model_of(command: list[str]) -> str | None:
    """The parent model a command names: its ``-m/--model`` value, else its config's ``model``."""
    model = None
    for index, token in enumerate(command[:-1]):
        if token in ("-m", "--model"):
            model = command[index + 1]
    if model is None:
        config = config_of(command)
        if config and isinstance(config.get("model"), str):
            model = config["model"]
    return model or None


def with_model(command: list[str], model: str) -> list[str]:
    """The command with ``-m/--model`` set to ``model`` (inserted in front when missing)."""
    result = list(command)
    for index, token in enumerate(result[:-1]):
        if token in ("-m", "--model"):
            result[index + 1] = model
            return result
    return ["-m", model, *result]


def _without_config(command: list[str]) -> list[str]:
    for index, token in enumerate(command[:-1]):
        if token in ("-c", "--config"):
            return command[:index] + command[index + 2 :]
    return list(command)


def _first_index(command: list[str], tokens: tuple[str, ...]) -> int:
    return next(index for index, token in enumerate(command) if token in tokens)


def _option_values(flags: tuple[str, ...], tokens: list[str]) -> list[str]:
    """Every value following one of ``flags`` up to the next option (``-o a b -x`` -> a, b)."""
    values, taking = [], False
    for token in tokens:
        if token in flags:
            taking = True
        elif token.startswith("-"):
            taking = False
        elif taking:
            values.append(token)
    return values


def _exec_suffix(command: list[str]) -> str:
    """The docker action of an exec task (first non-option token), used as the id suffix."""
    skip = False
    for token in command:
        if skip:
            skip = False
            continue
        if token.startswith("-"):
            skip = True
            continue
        cleaned = re.sub(r"[^a-z0-9]", "", token.lower())[:16]
        return cleaned or "exec"
    return "exec"


def _launcher_inputs(outputs: list[str], source: str) -> dict[str, str]:
    """``{file name: source task}`` for the ``launcher:`` outputs a child reads."""
    return {
        name[len(LAUNCHER_STORAGE) :]: source
        for name in outputs
        if name.startswith(LAUNCHER_STORAGE) and len(name) > len(LAUNCHER_STORAGE)
    }


def _reads_uploads(paths: list[str]) -> bool:
    """True when one of ``paths`` is in the task's ``${TMP_DIR}``, where the launch's uploads
    land: nmt-wizard's client rewrites a local ``totranslate``/``totuminer`` input so."""
    return any(UPLOADS_DIR in path for path in paths)


def _tuminer_score_file(output: str) -> str:
    """Where TU-miner writes the scores of ``output``: without ``.gz`` and the language
    extension (``launcher:test.de.gz`` -> ``launcher:test``)."""
    name = output[:-3] if output.endswith(".gz") else output
    return name[:-3]


def _pairs(value: Any, field_name: str) -> list[tuple[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(
        isinstance(pair, list | tuple)
        and len(pair) == 2
        and all(isinstance(item, str) and item for item in pair)
        for pair in value
    ):
        raise InvalidRequest(f"{field_name}: expected a list of [string, string] pairs")
    return [(a, b) for a, b in value]


@dataclass(frozen=True)
class ChainRequest:
    """What a launch asks for, as the engine validated it (``ncpus`` None: pool default)."""

    trainer_id: str
    command: list[str]
    image: str
    registry: str | None
    tag: str
    options: dict[str, Any]
    wait_after_launch: float | None
    exec_mode: bool
    ngpus: int
    ncpus: int | None
    cpu_allocation: dict[str, Any]
    priority: int
    iterations: int | None = None
    name: str | None = None
    model: str | None = None
    depends_on: str | None = None
    nochainprepr: bool = False
    notransasrelease: bool = False
    totranslate: Any = None
    toscore: Any = None
    totuminer: Any = None
    utility_registry: Callable[[str], str | None] = field(default=lambda image: None)


@dataclass(frozen=True)
class PlannedTask:
    """One task of a chain. ``label`` is the type of its launch answer line (``score`` and
    ``tuminer`` for the chain's utility tasks, which are stored as type ``exec``)."""

    task_id: str
    type: str
    label: str
    parent: str | None
    priority: int
    ngpus: int
    ncpus: int
    iteration: int
    content: dict[str, Any]
    with_files: bool


def plan_chain(request: ChainRequest) -> list[PlannedTask]:
    """Every task of the launch, in nmt-wizard's order; InvalidRequest with its messages."""
    return _ChainBuilder(request).build()


class _ChainBuilder:
    def __init__(self, request: ChainRequest):
        self.request = request
        exec_mode = request.exec_mode
        self.task_type = task_type_from_command(request.command, exec_mode)
        if not exec_mode and self.task_type == "exec":
            raise InvalidRequest("incorrect task definition")
        if request.iterations is not None:
            if exec_mode:
                raise InvalidRequest("chain mode unavailable in exec mode")
            if isinstance(request.iterations, bool) or not isinstance(request.iterations, int):
                raise InvalidRequest("invalid value for iterations")
            if request.iterations < 1 or (self.task_type != "train" and request.iterations != 1):
                raise InvalidRequest("invalid value for iterations")
        self.totranslate = _pairs(request.totranslate, "totranslate")
        self.toscore = _pairs(request.toscore, "toscore")
        self.totuminer = _pairs(request.totuminer, "totuminer")
        for pairs, message in (
            (self.totranslate, "translate mode unavailable for exec cmd"),
            (self.toscore, "score mode unavailable for exec cmd"),
            (self.totuminer, "tuminer chain mode unavailable for exec cmd"),
        ):
            if exec_mode and pairs is not None:
                raise InvalidRequest(message)
        tag = request.tag
        self.split_prepr = (
            not exec_mode
            and not request.nochainprepr
            and self.task_type == "train"
            and tag_at_least(tag, PREPR_SPLIT_FROM)
        )
        self.trans_as_release = (
            not exec_mode
            and not request.notransasrelease
            and tag_at_least(tag, TRANS_AS_RELEASE_FROM)
        )
        self.support_statistics = tag_at_least(tag, STATISTICS_FROM)
        self.model_parts = self._parse_model(request.model)
        self.parent_type = None if exec_mode or not self.model_parts else self.model_parts.task_type
        if self.parent_type in ("trans", "relea") or (
            self.task_type == "prepr" and self.parent_type not in (None, "train", "vocab")
        ):
            raise InvalidRequest(f"invalid parent task type: {self.parent_type}")
        self.xxyy = ids.language_pair(config_of(request.command)) or (
            self.model_parts.xxyy if self.model_parts else None
        )
        self.name = request.name or (self.model_parts.name if self.model_parts else None)
        self.name = ids.clean_name(self.name) if self.name else ids.generate_name()
        self.tasks: list[PlannedTask] = []

    @staticmethod
    def _parse_model(model: str | None) -> TaskIdParts | None:
        """A model named like a task id gives names and numbers; any other comes from outside."""
        if not model:
            return None
        try:
            return ids.parse_task_id(model)
        except InvalidRequest:
            return None

    # ------------------------------------------------------------------ helpers

    def _cpus(self, ngpus: int, kind: str) -> int:
        """The requested CPUs, else ``cpu_allocation``: ``gpu_task`` with GPUs, else
        ``<kind>_task``; 2 when the pool says nothing."""
        if self.request.ncpus is not None:
            return self.request.ncpus
        key = "gpu_task" if ngpus > 0 else f"{kind}_task"
        return self.request.cpu_allocation.get(key, 2)

    def _id(self, kind: str, parent: str | None, *, stored_type: str | None = None) -> str:
        parent_parts = ids.parse_task_id(parent) if parent else None
        return ids.build_task_id(
            self.request.trainer_id,
            stored_type or kind,
            xxyy=self.xxyy,
            name=self.name,
            nn=ids.iteration_number(kind, parent_parts),
            parent_id=parent,
            suffix=kind if stored_type == "exec" else None,
        )

    def _add(
        self,
        task_id: str,
        task_type: str,
        *,
        parent: str | None,
        command: list[str],
        ngpus: int,
        ncpus: int,
        priority: int,
        with_files: bool,
        label: str | None = None,
        image: str | None = None,
        **extra: Any,
    ) -> None:
        request = self.request
        docker = {
            "image": image or request.image,
            "registry": request.utility_registry(image) if image else request.registry,
            "tag": UTILITY_TAG if image else request.tag,
            "command": command,
        }
        content = {
            "docker": docker,
            "options": request.options,
            "wait_after_launch": request.wait_after_launch,
            "exec_mode": request.exec_mode,
            "support_statistics": self.support_statistics,
            **extra,
        }
        self.tasks.append(
            PlannedTask(
                task_id=task_id,
                type=task_type,
                label=label or task_type,
                parent=parent,
                priority=priority,
                ngpus=ngpus,
                ncpus=ncpus,
                iteration=ids.parse_task_id(task_id).nn,
                content=content,
                with_files=with_files,
            )
        )

    # ------------------------------------------------------------------ the chain

    def build(self) -> list[PlannedTask]:
        request = self.request
        command = list(request.command)
        named_after = request.model if self.model_parts else None  # ids derive from it
        waits_for = request.depends_on  # the task the next created task waits for
        parent_type = self.parent_type
        iterations = request.iterations or 1
        for iteration in range(iterations):
            if (self.split_prepr and parent_type != "prepr") or self.task_type == "prepr":
                prepr_id = self._id("prepr", named_after)
                leading = command[: _first_index(command, ("train", "preprocess"))]
                self._add(
                    prepr_id,
                    "prepr",
                    parent=waits_for,
                    command=[*leading, "--no_push", "preprocess", "--build_model"],
                    ngpus=0,
                    ncpus=self._cpus(0, "preprocess"),
                    priority=request.priority,
                    with_files=True,
                )
                command = with_model(_without_config(command), prepr_id)
                named_after = waits_for = prepr_id
            if self.task_type == "prepr":
                break
            task_id = self._main_task(command, named_after, waits_for)
            parent_type = self.task_type
            command = _without_config(command)
            if iteration + 1 < iterations:
                command = with_model(command, task_id)
                named_after = waits_for = task_id
        return self.tasks

    def _main_task(self, command: list[str], named_after: str | None, waits_for: str | None):
        request = self.request
        kind = _exec_suffix(command) if self.task_type == "exec" else self.task_type
        task_id = self._id(kind, named_after, stored_type=self.task_type)
        extra: dict[str, Any] = {}
        produced: dict[str, str] = {}
        if self.task_type == "trans":
            after = command[command.index("trans") + 1 :]
            extra["outputs"] = _option_values(("-o", "--output"), after)
            produced = dict.fromkeys(extra["outputs"], task_id)
        ngpus = request.ngpus
        ncpus = self._cpus(ngpus, self.task_type)
        if self.task_type == "trans" and self.trans_as_release and "--as_release" not in command:
            command = [*command, "--as_release"]
            ngpus = 0  # a release translation runs on CPUs, and so do its children
        self._add(
            task_id,
            self.task_type,
            parent=waits_for,
            command=command,
            ngpus=ngpus,
            ncpus=ncpus,
            priority=request.priority,
            with_files=True,
            **extra,
        )
        if self.totranslate:
            produced.update(self._translations(task_id, ngpus))
        if self.toscore:
            self._scores(task_id, produced)
        if self.totuminer:
            self._tuminers(task_id, produced, ngpus)
        return task_id

    def _translations(self, model_id: str, model_gpus: int) -> dict[str, str]:
        """The ``trans`` children of ``model_id`` (run on ``model_gpus``); returns
        ``{output: trans task}``."""
        pairs = self.totranslate
        ngpus = 0 if self.trans_as_release else min(model_gpus, 1)
        ncpus = self._cpus(ngpus, "trans")
        per_task = (
            len(pairs)
            if model_gpus == 0 or self.trans_as_release
            else math.ceil(len(pairs) / model_gpus)
        )
        produced = {}
        for start in range(0, len(pairs), per_task):
            subset = pairs[start : start + per_task]
            trans_id = self._id("trans", model_id)
            outputs = [output.replace(MODEL_PLACEHOLDER, model_id) for _, output in subset]
            release = ["--as_release"] if self.trans_as_release else []
            inputs = [source for source, _ in subset]
            self._add(
                trans_id,
                "trans",
                parent=model_id,
                command=["-m", model_id, "trans", *release, "-i", *inputs, "-o", *outputs],
                ngpus=ngpus,
                ncpus=ncpus,
                priority=self.request.priority + 1,
                with_files=_reads_uploads(inputs),
                outputs=outputs,
            )
            produced.update(dict.fromkeys(outputs, trans_id))
        return produced

    @staticmethod
    def _group(
        pairs: list[tuple[str, str]], produced: dict[str, str], output_at: int, model_id: str
    ) -> dict[str, list[tuple[str, str]]]:
        """Pairs grouped by the translation producing their output (``<MODEL>`` replaced in
        the output only); an output no translation of the launch writes is refused."""
        groups: dict[str, list[tuple[str, str]]] = {}
        field_name = "toscore" if output_at == 0 else "totuminer"
        for pair in pairs:
            items = list(pair)
            items[output_at] = items[output_at].replace(MODEL_PLACEHOLDER, model_id)
            source = produced.get(items[output_at])
            if source is None:
                raise InvalidRequest(
                    f"{field_name}: no translation of this launch writes {items[output_at]}"
                )
            groups.setdefault(source, []).append((items[0], items[1]))
        return groups

    def _utility(
        self, kind: str, image: str, trans_id: str, command: list[str], reads: list[str], **sizes
    ) -> None:
        """A ``score``/``tuminer`` task (type ``exec``) after ``trans_id``, reading ``reads``."""
        self._add(
            self._id(kind, trans_id, stored_type="exec"),
            "exec",
            label=kind,
            image=image,
            parent=trans_id,
            command=command,
            priority=self.request.priority + 2,
            inputs=_launcher_inputs(reads, trans_id),
            **sizes,
        )

    def _scores(self, model_id: str, produced: dict[str, str]) -> None:
        language = ["-l", self.model_parts.xxyy[-2:]] if self.model_parts else []
        for trans_id, pairs in self._group(self.toscore, produced, 0, model_id).items():
            outputs = [output for output, _ in pairs]
            references = [reference for _, reference in pairs]
            command = ["score", "-o", *outputs, "-r", *references, *language]
            command += ["-f", f"{LAUNCHER_STORAGE}scores"]
            self._utility(
                "score", SCORE_IMAGE, trans_id, command, outputs, ngpus=0, ncpus=1, with_files=True
            )

    def _tuminers(self, model_id: str, produced: dict[str, str], ngpus: int) -> None:
        """One ``tuminer`` task per translation, on the GPUs of the launch's main task."""
        ncpus = self._cpus(0, "tuminer")
        for trans_id, pairs in self._group(self.totuminer, produced, 1, model_id).items():
            sources = [source for source, _ in pairs]
            outputs = [output for _, output in pairs]
            scores = [_tuminer_score_file(output) for output in outputs]
            command = ["tuminer", "--tumode", "score", "--srcfile", *sources]
            command += ["--tgtfile", *outputs, "--output", *scores]
            self._utility(
                "tuminer",
                TUMINER_IMAGE,
                trans_id,
                command,
                outputs,
                ngpus=ngpus,
                ncpus=ncpus,
                with_files=_reads_uploads(sources),
            )
