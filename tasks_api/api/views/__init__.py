"""Views of the task API, one module per resource."""

from tasks_api.api.views.pools import PoolViewSet
from tasks_api.api.views.tasks import TaskViewSet

__all__ = ["PoolViewSet", "TaskViewSet"]
