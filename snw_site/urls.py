"""Root URL configuration: health routes, the API schema and docs, the console."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from snw_site import health

urlpatterns = [
    path("status", health.status, name="status"),
    path("version", health.version, name="version"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("accounts.api.urls")),
    path("", include("tasks_api.api.urls")),
]
