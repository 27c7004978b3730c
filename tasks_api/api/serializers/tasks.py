"""Serializers of the task routes: launch input, query strings, and task outputs."""

from __future__ import annotations

import json

from rest_framework import serializers

from nmtwizard import defaults
from nmtwizard.task import TaskStatus
from tasks_api.constants import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, MAX_LOG_WAIT

__all__ = [
    "BeatQuerySerializer",
    "DockerSerializer",
    "LaunchFormSerializer",
    "LaunchSerializer",
    "LogQuerySerializer",
    "LogWriteQuerySerializer",
    "StatSerializer",
    "TaskListItemSerializer",
    "TaskListQuerySerializer",
    "TaskSerializer",
    "TaskStatusQuerySerializer",
    "TerminateQuerySerializer",
    "TerminateResultSerializer",
]

_COUNT = {"min_value": 0, "max_value": 1024}
_TASK_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"

# Keys nmt-wizard HEAD's client sends that SNW does not implement: accepted when empty (the
# client always sends the ``ncpus_*`` ones, null unless asked), refused with 400 otherwise, so
# that a request is never half-honoured in silence.
_PER_TYPE_CPUS = "SNW does not set CPUs per task type; use ncpus (every task of the launch)"
_NOT_IMPLEMENTED = {
    "ncpus_prepr": _PER_TYPE_CPUS,
    "ncpus_train": _PER_TYPE_CPUS,
    "ncpus_trans": _PER_TYPE_CPUS,
    "tags": "SNW keeps no catalog of model tags; launch without tags",
}


def _per_type_cpus():
    return serializers.IntegerField(
        required=False, allow_null=True, help_text="Only null: not implemented (use `ncpus`)."
    )


# =============================================================================
# Launch
# =============================================================================
class DockerSerializer(serializers.Serializer):
    registry = serializers.CharField(default="auto", max_length=100)
    image = serializers.CharField(max_length=256)
    tag = serializers.CharField(max_length=128)
    command = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000),
        max_length=2000,
    )


class _PairsField(serializers.ListField):
    """A list of two-string pairs (nmt-wizard's ``totranslate``/``toscore``/``totuminer``)."""

    def __init__(self, **kwargs):
        pair = serializers.ListField(
            child=serializers.CharField(max_length=1000), min_length=2, max_length=2
        )
        super().__init__(child=pair, required=False, max_length=1000, **kwargs)


class LaunchSerializer(serializers.Serializer):
    """nmt-wizard's ``content``. ``trainer_id`` is ignored: the server sets the id prefix."""

    docker = DockerSerializer()
    options = serializers.DictField(required=False, default=dict)
    wait_after_launch = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=3600
    )
    trainer_id = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Ignored (set by the server)."
    )
    name = serializers.RegexField(
        r"^[A-Za-z0-9-]{1,64}$", required=False, allow_null=True, help_text="Model name."
    )
    iterations = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=100,
        help_text="Chained trainings (train only; refused in exec mode).",
    )
    priority = serializers.IntegerField(
        default=0, min_value=-defaults.MAX_PRIORITY, max_value=defaults.MAX_PRIORITY
    )
    ngpus = serializers.IntegerField(default=1, **_COUNT)
    ncpus = serializers.IntegerField(required=False, allow_null=True, **_COUNT)
    exec_mode = serializers.BooleanField(default=False)
    parent = serializers.RegexField(
        _TASK_ID,
        required=False,
        allow_null=True,
        help_text="Task to wait for (its successful end).",
    )
    dependency = serializers.RegexField(
        _TASK_ID,
        required=False,
        allow_null=True,
        help_text=(
            "nmt-wizard HEAD's `--dependency`: the task the launch's first task waits for "
            "(its successful end) instead of the `-m` model's task; unlike `parent`, the "
            "command's model is left as it is."
        ),
    )
    ncpus_prepr = _per_type_cpus()
    ncpus_train = _per_type_cpus()
    ncpus_trans = _per_type_cpus()
    tags = serializers.JSONField(
        required=False, help_text="Only empty: SNW keeps no catalog of model tags."
    )
    entity_owner = serializers.RegexField(
        r"^[A-Za-z]{2}$", required=False, allow_null=True, help_text="Owner entity of the task."
    )
    nochainprepr = serializers.BooleanField(
        default=False, help_text="Do not precede a train (tag >= 1.4.0) by a prepr task."
    )
    notransasrelease = serializers.BooleanField(
        default=False, help_text="Translate on the model, not --as_release (tag >= 1.8.0)."
    )
    totranslate = _PairsField(
        help_text="[[input, output], ...]: trans children; `<MODEL>` in an output is the model."
    )
    toscore = _PairsField(help_text="[[output, reference], ...]: a score task per translation.")
    totuminer = _PairsField(help_text="[[input, output], ...]: a tuminer task per translation.")
    nbest = serializers.JSONField(
        required=False, help_text="Ignored, as by nmt-wizard (no version reads it)."
    )
    novalidschema = serializers.BooleanField(
        required=False, help_text="Accepted: SNW never checks -c against the image's schema."
    )
    upgrade = serializers.CharField(
        required=False, max_length=32, help_text="Config upgrade mode: only `none`."
    )

    def validate(self, attrs):
        for key, why in _NOT_IMPLEMENTED.items():
            if attrs.pop(key, None) not in (None, [], {}, ""):
                raise serializers.ValidationError({key: why})
        return attrs

    def validate_upgrade(self, value):
        if value.lower() != "none":
            raise serializers.ValidationError(
                f"{value!r}: SNW does not rewrite task configs (the image upgrades its own "
                "config); send none or leave it out"
            )
        return value


class LaunchFormSerializer(serializers.Serializer):
    """Multipart form of ``task/launch``: ``content`` (JSON text) plus file fields."""

    content = serializers.CharField(help_text="The launch request as JSON text.")
    entity_owner = serializers.CharField(required=False, allow_blank=True)
    auto_patch_envvar = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=(
            "Ignored, harmlessly: nmt-wizard HEAD's client sends `true` on every launch; its "
            "server then rewrites storage variables in the command only for a corpus-manager "
            "migration it is configured for, which SNW has no equivalent of."
        ),
    )

    def validate_content(self, value):
        try:
            data = json.loads(value)
        except ValueError:
            raise serializers.ValidationError("invalid JSON") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError("expected a JSON object")
        return data


# =============================================================================
# Query strings
# =============================================================================
class TaskListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["launched", "queued", "allocated", "running", "terminating", "stopped"],
        required=False,
    )
    service = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$", required=False)
    parent = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$", required=False)
    with_parent = serializers.BooleanField(
        default=False, help_text="Accepted for nmt-wizard clients; rows always carry `parent`."
    )
    offset = serializers.IntegerField(default=0, min_value=0, max_value=1_000_000)
    limit = serializers.IntegerField(
        default=DEFAULT_LIST_LIMIT, min_value=1, max_value=MAX_LIST_LIMIT
    )


class TaskStatusQuerySerializer(serializers.Serializer):
    fields = serializers.RegexField(
        r"^[A-Za-z_]+(,[A-Za-z_]+)*$", required=False, help_text="Comma-separated field names."
    )


class TerminateQuerySerializer(serializers.Serializer):
    phase = serializers.RegexField(
        r"^[a-z_]{1,32}$", required=False, help_text="End message (default `aborted`)."
    )


class BeatQuerySerializer(serializers.Serializer):
    duration = serializers.FloatField(default=0, min_value=0, max_value=30 * 86400)
    container_id = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,128}$", required=False)


class LogQuerySerializer(serializers.Serializer):
    offset = serializers.IntegerField(default=0, min_value=0, max_value=2**40)
    wait = serializers.FloatField(
        default=0,
        min_value=0,
        max_value=MAX_LOG_WAIT,
        help_text=(
            "Long poll: when nothing lies past `offset` and the task has not stopped, wait up "
            f"to this many seconds (at most {MAX_LOG_WAIT:g}) for new bytes or the task's end; "
            "the answer comes as soon as either happens."
        ),
    )


class LogWriteQuerySerializer(serializers.Serializer):
    duration = serializers.FloatField(required=False, min_value=0, max_value=30 * 86400)
    offset = serializers.IntegerField(
        required=False, min_value=0, max_value=2**40, help_text="Host offset of the bytes."
    )


class StatSerializer(serializers.Serializer):
    """``task/stat``: the image's statistics (empty ones too, as nmt-wizard accepts them)."""

    task_id = serializers.CharField(max_length=200)
    start_time = serializers.FloatField()
    end_time = serializers.FloatField()
    statistics = serializers.DictField(required=False, default=dict)

    def validate(self, attrs):
        if attrs["end_time"] < attrs["start_time"]:
            raise serializers.ValidationError({"end_time": "must not precede start_time"})
        return attrs


# =============================================================================
# Outputs
# =============================================================================
def _opt(field_class, **kwargs):
    return field_class(required=False, allow_null=True, **kwargs)


class _TaskFieldsSerializer(serializers.Serializer):
    """Fields shared by a task's status and its list row (nmt-wizard's, then SNW's)."""

    task_id = serializers.CharField()
    type = _opt(serializers.CharField)
    status = _opt(serializers.CharField)
    message = _opt(serializers.CharField)
    priority = _opt(serializers.IntegerField)
    alloc_resource = _opt(serializers.CharField)
    alloc_lgpu = _opt(serializers.ListField, child=serializers.CharField())
    alloc_lcpu = _opt(serializers.ListField, child=serializers.CharField())
    launched_time = _opt(serializers.FloatField)
    entity = _opt(serializers.CharField, help_text="Owner entity.")
    user = _opt(serializers.CharField, help_text="Trainer id of the launcher.")
    ngpus = _opt(serializers.IntegerField)
    ncpus = _opt(serializers.IntegerField)


#: The other ``<status>_time`` fields and the last beat's ``updated_time``.
_StatusTimesSerializer = type(
    "_StatusTimesSerializer",
    (serializers.Serializer,),
    {
        f"{name}_time": _opt(serializers.FloatField)
        for name in (*(status.value for status in TaskStatus if status != "launched"), "updated")
    },
)


class TaskSerializer(_TaskFieldsSerializer, _StatusTimesSerializer):
    """``task/status`` (documentation): only the fields set on the task, never null (as
    nmt-wizard: its client sorts and subtracts every ``*_time``); stored fields not listed
    here are passed through. With ``?fields=a,b``: those (null when unset), ``task_id`` and
    ``current_time``."""

    service = _opt(serializers.CharField, help_text="The pool (nmt-wizard's name).")
    resource = _opt(serializers.CharField, help_text="Requested host(s), comma-separated, or auto.")
    parent = _opt(serializers.CharField)
    container_id = _opt(serializers.CharField)
    content = _opt(serializers.CharField, help_text="The launch content, as JSON text.")
    files = _opt(serializers.ListField, child=serializers.CharField(), help_text="File names.")
    current_time = serializers.IntegerField()
    # SNW's own fields
    pool = _opt(serializers.CharField)
    alloc_host = _opt(serializers.CharField)
    alloc_gpus = _opt(serializers.ListField, child=serializers.JSONField())
    alloc_cpus = _opt(serializers.ListField, child=serializers.JSONField())
    file_sizes = _opt(
        serializers.DictField, child=serializers.IntegerField(), help_text="Name -> bytes."
    )


class TaskListItemSerializer(_TaskFieldsSerializer):
    """One row of ``task/list``: nmt-wizard's fields and types (null when unset), then SNW's."""

    service = serializers.CharField(allow_blank=True, help_text="The pool.")
    resource = serializers.CharField(help_text="Requested host(s), comma-separated, or `auto`.")
    iterations = _opt(serializers.IntegerField, help_text="Always null (as nmt-wizard).")
    parent = serializers.CharField(allow_blank=True, help_text="Parent task, or ''.")
    owner = _opt(serializers.CharField)
    image = serializers.CharField(help_text="`image:tag`, or `-`.")
    model = serializers.CharField(help_text="The command's `-m` value, or `-`.")
    # SNW's own fields
    queued_time = _opt(serializers.FloatField)
    running_time = _opt(serializers.FloatField)
    stopped_time = _opt(serializers.FloatField)
    iteration = _opt(serializers.IntegerField)


class TerminateResultSerializer(serializers.Serializer):
    message = serializers.CharField()
    status = serializers.CharField()
