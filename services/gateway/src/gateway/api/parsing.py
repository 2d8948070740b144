"""Turning a request's body and query string into validated models (or a 4xx)."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.problems import ApiProblem, validation_problem
from gateway.request_bodies import BodyRefused, read_json_object

M = TypeVar("M", bound=BaseModel)


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
