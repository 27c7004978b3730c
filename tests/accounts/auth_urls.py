"""Test-only URLconf: the project's routes plus stand-ins for task callback routes.

The real callback views (beat, log, file, stat, status) come with the task API; these declare
themselves the same way (``task_callback``), so the restricted-token rules can be specified now.
"""

from django.urls import path
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from snw_site.urls import urlpatterns as site_urlpatterns


def _echo(request, **kwargs):
    return Response(
        {
            "trainer_id": request.user.trainer_id,
            "kind": getattr(request.auth, "kind", None),
            **kwargs,
        }
    )


class WhoAmIView(APIView):
    """An ordinary authenticated route."""

    def get(self, request):
        return _echo(request)

    post = put = patch = delete = get


class TaskBeatView(APIView):
    """A callback route, like ``/task/beat/<task_id>``."""

    task_callback = True

    def get(self, request, task_id):
        return _echo(request, task_id=task_id)

    post = put = patch = get


class TaskTerminateView(APIView):
    """Names a task in its URL but is *not* a callback route: closed to restricted tokens."""

    def get(self, request, task_id):
        return _echo(request, task_id=task_id)

    post = delete = get


class CustomKwargCallbackView(APIView):
    """A callback route whose URL names the task ``tid``."""

    task_callback = True
    task_callback_kwarg = "tid"

    def get(self, request, tid):
        return _echo(request, task_id=tid)


class TaskViewSet(viewsets.ViewSet):
    """A ViewSet where only the ``beat`` action is a callback route."""

    task_callback = {"beat"}
    lookup_field = "task_id"
    lookup_value_regex = "[^/]+"

    def retrieve(self, request, task_id=None):
        return _echo(request, task_id=task_id)

    @action(detail=True, methods=["get", "put"])
    def beat(self, request, task_id=None):
        return _echo(request, task_id=task_id)

    @action(detail=True, methods=["post"])
    def terminate(self, request, task_id=None):
        return _echo(request, task_id=task_id)


class LyingCallbackView(APIView):
    """``task_callback`` must be True or a collection of actions; a string does not count."""

    task_callback = "yes"

    def get(self, request, task_id):
        return _echo(request, task_id=task_id)


router = SimpleRouter(trailing_slash=False)
router.register("test/tasks", TaskViewSet, basename="test-tasks")

#: Route names that are callbacks (tested apart from the "everything else is closed" sweep).
CALLBACK_ROUTE_NAMES = {"test-beat", "test-custom-kwarg", "test-tasks-beat"}

urlpatterns = [
    *site_urlpatterns,
    path("test/whoami", WhoAmIView.as_view(), name="test-whoami"),
    path("test/task/beat/<str:task_id>", TaskBeatView.as_view(), name="test-beat"),
    path("test/task/terminate/<str:task_id>", TaskTerminateView.as_view(), name="test-terminate"),
    path("test/custom/<str:tid>", CustomKwargCallbackView.as_view(), name="test-custom-kwarg"),
    path("test/lying/<str:task_id>", LyingCallbackView.as_view(), name="test-lying"),
    *router.urls,
]
