"""The API's pagination (its own module: DRF imports it while drf_spectacular loads, so it
may import nothing that imports the schema generator)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's page numbers, but a `page` that is not a whole number from 1 (an empty one
    included, which DRF reads as the first page) is a 400 like any other bad parameter."""

    def get_page_number(self, request: Any, paginator: Any) -> Any:
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw != "last" and not (raw.isdigit() and int(raw) >= 1):
            raise exceptions.ValidationError({"page": "A page number from 1."})
        return super().get_page_number(request, paginator)
