"""The pools and tasks pages of the SNW console (admin views mounted by ``snw_site.console``).

Data comes from the engine, never from SQL; who sees and may terminate what is decided by
``tasks_api.scoping`` (over ``accounts.policy``), exactly as for the task API, and terminate
calls the same service as ``GET /task/terminate``.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from rest_framework import exceptions as drf_exceptions

from nmtwizard.exceptions import EngineError
from nmtwizard.task import TaskStatus
from tasks_api import scoping, selectors, services
from tasks_api.constants import TaskRule
from tasks_api.engine import get_engine

__all__ = ["urls"]

#: Bytes of log shown on a task page.
LOG_TAIL = 8192
PAGE_SIZE = 100
_TIMELINE = ("launched", "queued", "allocated", "running", "terminating", "stopped")


def urls(site) -> list:
    wrap = site.admin_view
    return [
        path("console/pools/", wrap(lambda r: pools_view(site, r)), name="console-pools"),
        path("console/tasks/", wrap(lambda r: tasks_view(site, r)), name="console-tasks"),
        path(
            "console/tasks/<str:task_id>/",
            wrap(lambda r, task_id: task_view(site, r, task_id)),
            name="console-task",
        ),
        path(
            "console/tasks/<str:task_id>/terminate/",
            wrap(require_POST(lambda r, task_id: terminate_view(site, r, task_id))),
            name="console-task-terminate",
        ),
    ]


def _render(site, request, template: str, title: str, **context):
    request.current_app = site.name
    return TemplateResponse(
        request, template, {**site.each_context(request), "title": title, **context}
    )


def _when(value) -> str:
    if not value:
        return ""
    return dt.datetime.fromtimestamp(float(value), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# =============================================================================
# Pools
# =============================================================================
def pools_view(site, request):
    engine = get_engine()
    try:
        pools = scoping.visible_pools(request.user, engine, engine.list_pools())
        readable = scoping.task_read_scope(request.user)
        rows = [
            {
                **selectors.pool_without_unreadable_tasks(engine, p, readable),
                "entities": sorted(scoping.pool_entities(engine, p["name"])),
            }
            for p in pools
        ]
    except EngineError as exc:
        messages.error(request, f"The engine is unavailable: {exc}")
        rows = []
    return _render(site, request, "admin/console/pools.html", "Pools", pools=rows)


# =============================================================================
# Tasks
# =============================================================================
def tasks_view(site, request):
    engine = get_engine()
    scope = scoping.task_read_scope(request.user)
    status = request.GET.get("status") or None
    pool = request.GET.get("pool") or None
    user = (request.GET.get("user") or "").strip() or None
    if status not in {s.value for s in TaskStatus}:
        if status is not None:
            messages.warning(request, f"Unknown status {status!r}: showing every status.")
        status = None
    tasks: list[dict] = []
    if scope is None or scope:
        try:
            tasks = engine.list_tasks(
                entities=scope,
                users={user} if user else None,
                status=status,
                pool=pool,
                limit=PAGE_SIZE,
            )
            pool_names = sorted(
                p["name"] for p in scoping.visible_pools(request.user, engine, engine.list_pools())
            )
        except EngineError as exc:
            messages.error(request, f"The engine is unavailable: {exc}")
            pool_names = []
    else:
        pool_names = []
    rows = [
        {**selectors.task_list_row(t), "launched": _when(t.get("launched_time"))} for t in tasks
    ]
    return _render(
        site,
        request,
        "admin/console/tasks.html",
        "Tasks",
        tasks=rows,
        statuses=[s.value for s in TaskStatus],
        pools=pool_names,
        selected={"status": status or "", "pool": pool or "", "user": user or ""},
        page_size=PAGE_SIZE,
    )


def _task_or_404(request, engine, task_id: str, rule: TaskRule) -> dict:
    # scoping reads the token's task restriction from ``request.auth``: a console session
    # carries no token, hence no restriction.
    request.auth = getattr(request, "auth", None)
    try:
        return scoping.task_access(request, engine, task_id, rule)
    except drf_exceptions.NotFound:
        raise Http404(f"task {task_id} does not exist") from None


def _may(request, engine, task_id: str, rule: TaskRule) -> bool:
    try:
        _task_or_404(request, engine, task_id, rule)
    except (Http404, drf_exceptions.APIException):
        return False
    return True


def task_view(site, request, task_id: str):
    engine = get_engine()
    task = _task_or_404(request, engine, task_id, TaskRule.READ)
    log, _ = engine.read_log(task_id)
    timeline = [
        (step, _when(task.get(f"{step}_time"))) for step in _TIMELINE if task.get(f"{step}_time")
    ]
    may_terminate = task.get("status") != TaskStatus.STOPPED and _may(
        request, engine, task_id, TaskRule.STOP
    )
    return _render(
        site,
        request,
        "admin/console/task.html",
        f"Task {task_id}",
        task=task,
        row=selectors.task_list_row(task),
        timeline=timeline,
        log_tail=log[-LOG_TAIL:].decode("utf-8", "replace"),
        may_terminate=may_terminate,
    )


def terminate_view(site, request, task_id: str):
    engine = get_engine()
    back = reverse("admin:console-task", args=[task_id], current_app=site.name)
    try:
        task = _task_or_404(request, engine, task_id, TaskRule.STOP)
        result = services.task_terminate(actor=request.user, engine=engine, task=task, phase=None)
    except drf_exceptions.PermissionDenied as exc:
        messages.error(request, str(exc.detail))
    except EngineError as exc:
        messages.error(request, f"Could not terminate {task_id}: {exc}")
    else:
        messages.success(request, f"{result['message']} (now {result['status']}).")
    return HttpResponseRedirect(back)
