"""Turning a request's body and query string into validated models (or a 4xx)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ValidationError

from gateway.problems import ApiProblem, validation_problem
from gateway.request_bodies import BodyRefused, read_json_object

M = TypeVar("M", bound=BaseModel)

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    # Only the string the document promises (and the SDK sends): pydantic's lax mode
    # would also read a number, or "0.5", as a Unix time.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 date-time string with a time zone, e.g. 2026-01-31T00:00:00Z"
        )
    return value


# A date-time in a body or a query string: RFC 3339 with a zone, nothing else.
Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


async def parse_json_body(request: web.Request, model: type[M]) -> M:
    """The body as ``model``: 415 not JSON, 400 malformed, 413 too large, 422 invalid."""
    try:
        payload = await read_json_object(request)
    except BodyRefused as refused:
        raise ApiProblem(refused.status, refused.code, refused.detail) from None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_problem(exc, where="body") from None


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``; 422 naming each bad or unknown parameter."""
    params: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise ApiProblem(
                422,
                "INVALID_QUERY_PARAMETERS",
                f"Query parameter '{key}' given more than once",
                errors=[{"field": key, "message": "Given more than once", "type": "duplicate"}],
            )
        params[key] = values[0]
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise validation_problem(exc, where="query") from None
