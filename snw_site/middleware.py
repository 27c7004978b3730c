"""Site-wide middleware: a full Redis answers 507 on every route, not only the DRF ones.

The DRF routes translate Redis errors in their exception handler
(:mod:`accounts.api.exceptions`); the console, the admin and any other plain Django view get
the same answer here, as plain text.
"""

from __future__ import annotations

from django.http import HttpResponse

from accounts.api.exceptions import STORE_FULL_MESSAGE
from nmtwizard.exceptions import out_of_memory

__all__ = ["StoreFullMiddleware"]


class StoreFullMiddleware:
    """Turn a write Redis refused at its ``maxmemory`` (however deep in the exception chain)
    into ``507 Insufficient Storage`` with a plain message, instead of a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if out_of_memory(exception):
            return HttpResponse(
                STORE_FULL_MESSAGE + "\n", status=507, content_type="text/plain; charset=utf-8"
            )
        return None
