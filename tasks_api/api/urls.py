"""Routes of the task API, at the root as in nmt-wizard (included by ``snw_site.urls``)."""

from django.urls import path, re_path

from accounts.api.exceptions import no_route
from tasks_api.api.views import PoolViewSet, TaskViewSet

__all__ = ["urlpatterns"]


def _task(mapping: dict):
    return TaskViewSet.as_view(mapping)


def _pool(mapping: dict):
    return PoolViewSet.as_view(mapping)


# =============================================================================
# Pools
# =============================================================================
pool_patterns = [
    path("service/list", _pool({"get": "pools"}), name="service-list"),
    path("service/describe/<str:pool>", _pool({"get": "describe"}), name="service-describe"),
    path(
        "service/check/<str:pool>",
        _pool({"get": "check_get", "post": "check_post"}),
        name="service-check",
    ),
    path(
        "service/configs/_base",
        _pool({"get": "base_config_get", "post": "base_config_post"}),
        name="service-configs-base",
    ),
    path(
        "service/configs/<str:pool>",
        _pool({"get": "configs_get", "post": "configs_post"}),
        name="service-configs",
    ),
    path("service/listconfig/<str:pool>", _pool({"get": "listconfig"}), name="service-listconfig"),
    path(
        "service/setconfig/<str:pool>/<str:name>",
        _pool({"post": "setconfig"}),
        name="service-setconfig",
    ),
    path(
        "service/addconfig/<str:pool>/<str:name>",
        _pool({"post": "addconfig"}),
        name="service-addconfig",
    ),
    path(
        "service/selectconfig/<str:pool>/<str:name>",
        _pool({"get": "selectconfig"}),
        name="service-selectconfig",
    ),
    path(
        "service/delconfig/<str:pool>/<str:name>",
        _pool({"get": "delconfig"}),
        name="service-delconfig",
    ),
    path("service/restart/<str:pool>", _pool({"get": "restart"}), name="service-restart"),
    path("service/stop/<str:pool>", _pool({"get": "stop"}), name="service-stop"),
    path("service/enable/<str:pool>/<str:host>", _pool({"get": "enable"}), name="service-enable"),
    path(
        "service/disable/<str:pool>/<str:host>", _pool({"get": "disable"}), name="service-disable"
    ),
]

# =============================================================================
# Tasks and their callbacks
# =============================================================================
task_patterns = [
    path("task/launch/<str:pool>", _task({"post": "launch"}), name="task-launch"),
    path("task/status/<str:task_id>", _task({"get": "status"}), name="task-status"),
    path("task/list/<str:pattern>", _task({"get": "list"}), name="task-list"),
    path("task/terminate/<str:task_id>", _task({"get": "terminate"}), name="task-terminate"),
    path(
        "task/beat/<str:task_id>",
        _task({"put": "beat_put", "get": "beat_get"}),
        name="task-beat",
    ),
    path(
        "task/log/<str:task_id>",
        _task({"get": "log_read", "patch": "log_append", "post": "log_replace"}),
        name="task-log",
    ),
    path(
        "task/file/<str:task_id>/<path:name>",
        _task({"get": "file_get", "post": "file_put"}),
        name="task-file",
    ),
    path("task/stat/<str:task_id>", _task({"post": "stat"}), name="task-stat"),
    path(
        "file/<str:task_id>/<path:name>",
        _task({"get": "file_alias_get", "post": "file_alias_put"}),
        name="file",
    ),
    path("task/<str:task_id>", _task({"delete": "destroy"}), name="task-delete"),
]

urlpatterns = [
    *pool_patterns,
    *task_patterns,
    re_path(r"^(task|service|file)(/[\s\S]*)?$", no_route, name="task-api-no-route"),
]
