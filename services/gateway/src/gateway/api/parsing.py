"""Turning a request's body and query string into validated models (or a 4xx)."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.problems import ApiProblem, validation_problem

M = TypeVar("M", bound=BaseModel)


async def parse_json_body(request: web.Request, model: type[M]) -> M:
    """The body as ``model``: 415 if not JSON, 400 if malformed, 422 if invalid."""
    if request.content_type != "application/json":
        raise ApiProblem(
            415, "UNSUPPORTED_MEDIA_TYPE", "Send the body as JSON (Content-Type: application/json)"
        )
    raw = await request.read()  # bounded by the app's client_max_size (413 beyond it)
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "MALFORMED_JSON", "The request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ApiProblem(400, "MALFORMED_JSON", "The request body must be a JSON object")
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
