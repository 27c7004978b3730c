"""Task routes (nmt-wizard paths): launch, status, list, terminate, delete, and the callbacks
a running task sends (beat, log, files, statistics).

Thin: parse with a serializer, check access through :mod:`tasks_api.scoping`, call a service,
selector or the engine facade, serialize.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.serializers import MessageSerializer
from tasks_api import scoping, selectors, services
from tasks_api.api.serializers import (
    BeatQuerySerializer,
    LaunchFormSerializer,
    LaunchSerializer,
    LogQuerySerializer,
    LogWriteQuerySerializer,
    StatSerializer,
    TaskListItemSerializer,
    TaskListQuerySerializer,
    TaskSerializer,
    TaskStatusQuerySerializer,
    TerminateQuerySerializer,
    TerminateResultSerializer,
)
from tasks_api.api.views.base import (
    EngineViewSet,
    PassthroughRenderer,
    PlainTextRenderer,
    errors,
    read_body,
)
from tasks_api.constants import (
    LOG_OFFSET_HEADER,
    MAX_LOG_REQUEST,
    MAX_UPLOAD,
    TASK_MESSAGE_HEADER,
    TASK_STATUS_HEADER,
    PoolRule,
    TaskRule,
)
from tasks_api.exceptions import PayloadTooLarge

__all__ = ["TaskViewSet"]

_TASK_ID = OpenApiParameter("task_id", OpenApiTypes.STR, OpenApiParameter.PATH)
_POOL = OpenApiParameter("pool", OpenApiTypes.STR, OpenApiParameter.PATH)
_PATTERN = OpenApiParameter(
    "pattern",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Glob on the task id with an implied trailing `*` (`-*`: every task).",
)
_FILE_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)
_LOG_HEADERS = [
    OpenApiParameter(
        LOG_OFFSET_HEADER,
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=[200],
        description="The offset to read from next.",
    ),
    OpenApiParameter(
        TASK_STATUS_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200],
        description="The task's status when the log was read: a follower stops after a read "
        "with no bytes and status `stopped`.",
    ),
    OpenApiParameter(
        TASK_MESSAGE_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200],
        description="The task's message (its outcome once stopped: `completed`, `error`, "
        "`aborted`…), when it has one.",
    ),
]
_OK = OpenApiResponse(MessageSerializer, description="Done.")
_LAUNCH_RESPONSE = {
    "oneOf": [
        {"type": "string", "description": "One task: `<type>\\t<task_id>\\tngpus: N, ncpus: M`"},
        {"type": "array", "items": {"type": "string"}, "description": "A chain, in order."},
    ]
}


class _LogAck(serializers.Serializer):
    message = serializers.CharField()
    offset = serializers.IntegerField(help_text="Log size, or host offset copied up to.")


class _BeatAck(serializers.Serializer):
    message = serializers.CharField()
    status = serializers.CharField()


def release_db_connection() -> None:
    """Close this thread's database connection before a long poll sleeps: hundreds of waiting
    followers must not pin hundreds of database connections (the next request reopens one).
    Inside a transaction (tests, ATOMIC_REQUESTS) the connection is left alone."""
    if not connection.in_atomic_block:
        connection.close()


def _launch_line(task: dict) -> str:
    return f"{task['type']}\t{task['task_id']}\tngpus: {task['ngpus']}, ncpus: {task['ncpus']}"


class TaskViewSet(EngineViewSet):
    """Every task route; URL kwargs ``task_id`` / ``pool`` / ``pattern`` / ``name``."""

    rules = {
        "launch": PoolRule.LAUNCH,
        "list": TaskRule.READ,
        "status": TaskRule.READ,
        "log_read": TaskRule.READ,
        "terminate": TaskRule.STOP,
        "destroy": TaskRule.DELETE,
        "beat_put": TaskRule.CALLBACK,
        "beat_get": TaskRule.CALLBACK,
        "log_append": TaskRule.CALLBACK,
        "log_replace": TaskRule.CALLBACK,
        "file_put": TaskRule.CALLBACK,
        "stat": TaskRule.CALLBACK,
        "file_get": TaskRule.READ_OR_CALLBACK,
        "file_alias_get": TaskRule.READ_OR_CALLBACK,
        "file_alias_put": TaskRule.CALLBACK,
    }
    # Routes a task-restricted token may call (accounts.authentication), for its own task only.
    task_callback = frozenset(
        {
            "terminate",
            "beat_put",
            "beat_get",
            "log_append",
            "log_replace",
            "file_put",
            "file_get",
            "file_alias_get",
            "file_alias_put",
            "stat",
        }
    )
    task_callback_kwarg = "task_id"
    raw_renderers = {
        "log_read": PlainTextRenderer,
        "file_get": PassthroughRenderer,
        "file_alias_get": PassthroughRenderer,
    }

    def _task(self, task_id: str) -> dict:
        return scoping.task_access(self.request, self.engine, task_id, self.rules[self.action])

    def _query(self, serializer_class):
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    # =========================================================================
    # Launch
    # =========================================================================
    def _launch_input(self, request) -> tuple[dict, str | None, dict[str, bytes]]:
        files: dict[str, bytes] = {}
        owner = None
        if request.content_type.startswith(("multipart/form-data", "application/x-www-form")):
            form = LaunchFormSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            raw, owner = form.validated_data["content"], form.validated_data.get("entity_owner")
            for name, upload in request.FILES.items():
                if upload.size > MAX_UPLOAD:
                    raise PayloadTooLarge(f"file {name} exceeds {MAX_UPLOAD} bytes")
                files[name] = upload.read()
        else:
            raw = request.data
            if isinstance(raw, dict) and isinstance(raw.get("content"), dict):
                raw = raw["content"]
            if not isinstance(raw, dict):
                raise serializers.ValidationError({"content": "expected a JSON object"})
        content = LaunchSerializer(data=raw)
        content.is_valid(raise_exception=True)
        data = content.validated_data
        return data, data.get("entity_owner") or owner or None, files

    @extend_schema(
        tags=["tasks"],
        operation_id="task_launch",
        parameters=[_POOL],
        request={
            "application/json": LaunchSerializer,
            "multipart/form-data": LaunchFormSerializer,
        },
        responses={200: _LAUNCH_RESPONSE, **errors(400, 404, 413)},
        description=(
            "Launch a task, or a chain (prepr+train split, `iterations`, `totranslate`, "
            "`toscore`, `totuminer`: nmt-wizard's rules) on a pool. The body is "
            "nmt-wizard's `content`: as a multipart form field (with file fields, stored as "
            "task files under their field name) or as the JSON body itself. The task id's "
            "trainer prefix is always the caller's trainer id."
        ),
    )
    def launch(self, request, pool: str):
        entities = scoping.pool_access(request.user, self.engine, pool, PoolRule.LAUNCH)
        content, owner, files = self._launch_input(request)
        for waited in ("parent", "dependency"):
            if content.get(waited):
                # Chaining onto a task one cannot read answers as if it did not exist.
                scoping.task_access(request, self.engine, str(content[waited]), TaskRule.READ)
        entity = scoping.launch_entity(request.user, entities, owner)
        tasks = services.task_launch(
            actor=request.user,
            engine=self.engine,
            pool=pool,
            entity=entity,
            content=content,
            files=files,
            visible_entities=scoping.task_read_scope(request.user),
        )
        lines = [_launch_line(t) for t in tasks]
        return Response(lines[0] if len(lines) == 1 else lines)

    # =========================================================================
    # Reading
    # =========================================================================
    @extend_schema(
        tags=["tasks"],
        operation_id="task_status",
        parameters=[_TASK_ID, TaskStatusQuerySerializer],
        request=None,
        responses={200: TaskSerializer, **errors(400, 404)},
        description=(
            "Every field set on the task (unset ones are left out), `content` as JSON text, "
            "its files and the time; with `?fields=a,b` only those (null when unset)."
        ),
    )
    def status(self, request, task_id: str):
        query = self._query(TaskStatusQuerySerializer)
        task = self._task(task_id)
        full = selectors.task_status(task, self.engine.list_files(task_id))
        if query.get("fields"):
            wanted = query["fields"].split(",")
            full = {
                **{f: full.get(f) for f in wanted},
                "task_id": task_id,
                "current_time": full["current_time"],
            }
        return Response(full)

    @extend_schema(
        tags=["tasks"],
        operation_id="task_list",
        parameters=[_PATTERN, TaskListQuerySerializer],
        request=None,
        responses={200: TaskListItemSerializer(many=True), **errors(400)},
        description=(
            "Tasks whose id matches the pattern among those you may read, newest first; "
            "filters `status`, `service`, `parent`; paging `offset`, `limit`."
        ),
    )
    def list(self, request, pattern: str):
        query = self._query(TaskListQuerySerializer)
        tasks = selectors.task_list(
            self.engine,
            pattern,
            entities=scoping.task_read_scope(request.user),
            status=query.get("status"),
            pool=query.get("service"),
            parent=query.get("parent"),
            offset=query["offset"],
            limit=query["limit"],
        )
        rows = [selectors.task_list_row(t) for t in tasks]
        return Response(TaskListItemSerializer(rows, many=True).data)

    @extend_schema(
        tags=["tasks"],
        operation_id="task_log_read",
        parameters=[_TASK_ID, LogQuerySerializer, *_LOG_HEADERS],
        request=None,
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Log bytes from `offset` (none when `wait` passed without news).",
            ),
            **errors(400, 404),
        },
        description=(
            "Read a task's log from `offset`. With `wait`, a long poll: the answer comes as "
            "soon as new bytes arrive or the task stops, or after `wait` seconds."
        ),
    )
    def log_read(self, request, task_id: str):
        query = self._query(LogQuerySerializer)
        self._task(task_id)
        chunk = self.engine.follow_log(
            task_id, query["offset"], wait=query["wait"], before_wait=release_db_connection
        )
        response = HttpResponse(chunk.data, content_type="text/plain; charset=utf-8")
        response[LOG_OFFSET_HEADER] = str(chunk.offset)
        response[TASK_STATUS_HEADER] = chunk.status
        if chunk.message:
            response[TASK_MESSAGE_HEADER] = chunk.message
        return response

    _file_get_schema = {
        "tags": ["task files"],
        "parameters": [_TASK_ID, _FILE_NAME],
        "request": None,
        "responses": {
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            **errors(400, 404),
        },
    }

    @extend_schema(operation_id="task_file_get", **_file_get_schema)
    def file_get(self, request, task_id: str, name: str):
        task = self._task(task_id)
        data = self.engine.get_file(task_id, name, task=task)
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{name.rsplit("/", 1)[-1]}"'
        return response

    # =========================================================================
    # Stopping and deleting
    # =========================================================================
    @extend_schema(
        tags=["tasks"],
        operation_id="task_terminate",
        parameters=[_TASK_ID, TerminateQuerySerializer],
        request=None,
        responses={200: TerminateResultSerializer, **errors(400, 404)},
        description=(
            "Stop a task (`phase`: its end message, default `aborted`). Answers at once; "
            "`status` is `stopped` for a task not started yet, else `terminating`."
        ),
    )
    def terminate(self, request, task_id: str):
        query = self._query(TerminateQuerySerializer)
        task = self._task(task_id)
        result = services.task_terminate(
            actor=request.user,
            engine=self.engine,
            task=task,
            phase=query.get("phase"),
            by_the_task=scoping.sent_by_the_task(request, task_id),
        )
        return Response(result)

    @extend_schema(
        tags=["tasks"],
        operation_id="task_delete",
        parameters=[_TASK_ID],
        request=None,
        responses={200: _OK, **errors(404, 409)},
        description="Delete a stopped task with its log and files (409 while it runs).",
    )
    def destroy(self, request, task_id: str):
        task = self._task(task_id)
        result = services.task_delete(actor=request.user, engine=self.engine, task=task)
        return Response(result)

    # =========================================================================
    # Callbacks of the running task (its token, its owner, or `terminate` on its entity)
    # =========================================================================
    def _beat(self, request, task_id: str):
        query = self._query(BeatQuerySerializer)
        self._task(task_id)
        status = self.engine.beat(task_id, query["duration"], query.get("container_id"))
        return Response({"message": "ok", "status": status})

    _beat_schema = {
        "tags": ["task callbacks"],
        "parameters": [_TASK_ID, BeatQuerySerializer],
        "request": None,
        "responses": {200: _BeatAck, **errors(400, 404)},
        "description": "Liveness: without another beat within `duration` s the task expires.",
    }

    @extend_schema(operation_id="task_beat", **_beat_schema)
    def beat_put(self, request, task_id: str):
        return self._beat(request, task_id)

    @extend_schema(operation_id="task_beat_get", **_beat_schema)
    def beat_get(self, request, task_id: str):
        return self._beat(request, task_id)

    @extend_schema(
        tags=["task callbacks"],
        operation_id="task_log_append",
        parameters=[_TASK_ID, LogWriteQuerySerializer],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: _LogAck, **errors(400, 404, 413)},
        description=(
            "Append the body to the log (and beat with `duration`). With `offset` (the host "
            "offset of the bytes, as the runner sends it) the append is idempotent."
        ),
    )
    def log_append(self, request, task_id: str):
        query = self._query(LogWriteQuerySerializer)
        self._task(task_id)
        data = read_body(request, MAX_LOG_REQUEST)
        if query.get("offset") is not None:
            offset = self.engine.sync_log(task_id, query["offset"], data, query.get("duration"))
        else:
            offset = self.engine.append_log(task_id, data, query.get("duration"))
        return Response({"message": "ok", "offset": offset})

    @extend_schema(
        tags=["task callbacks"],
        operation_id="task_log_replace",
        parameters=[_TASK_ID],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: _LogAck, **errors(400, 404, 413)},
        description="Replace the log with the body (cut at the log size cap).",
    )
    def log_replace(self, request, task_id: str):
        self._task(task_id)
        data = read_body(request, MAX_LOG_REQUEST)
        return Response({"message": "ok", "offset": self.engine.write_log(task_id, data)})

    _file_put_schema = {
        "tags": ["task files"],
        "parameters": [_TASK_ID, _FILE_NAME],
        "request": {"application/octet-stream": OpenApiTypes.BINARY},
        "responses": {200: _OK, **errors(400, 404, 413)},
        "description": "Store the body as a task file (no `..`, no absolute path).",
    }

    @extend_schema(operation_id="task_file_put", **_file_put_schema)
    def file_put(self, request, task_id: str, name: str):
        self._task(task_id)
        self.engine.put_file(task_id, name, read_body(request, MAX_UPLOAD))
        return Response({"message": "ok"})

    # nmt-wizard's ``/file/<task_id>/<name>``: the same routes under a shorter path.
    @extend_schema(operation_id="file_get", **_file_get_schema)
    def file_alias_get(self, request, task_id: str, name: str):
        return self.file_get(request, task_id, name)

    @extend_schema(operation_id="file_put", **_file_put_schema)
    def file_alias_put(self, request, task_id: str, name: str):
        return self.file_put(request, task_id, name)

    @extend_schema(
        tags=["task callbacks"],
        operation_id="task_stat",
        parameters=[_TASK_ID],
        request=StatSerializer,
        responses={200: _OK, **errors(400, 404)},
        description=(
            "Record the task's statistics (`{}` or none at all is accepted) and duration; "
            "an empty body is refused (`statistics empty`)."
        ),
    )
    def stat(self, request, task_id: str):
        self._task(task_id)
        if not request.data:
            raise serializers.ValidationError({"statistics": "statistics empty"})
        serializer = StatSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["task_id"] != task_id:
            raise serializers.ValidationError({"task_id": "incorrect task_id"})
        self.engine.post_stat(
            task_id,
            start_time=data["start_time"],
            end_time=data["end_time"],
            statistics=data["statistics"],
        )
        return Response({"message": "ok"})
