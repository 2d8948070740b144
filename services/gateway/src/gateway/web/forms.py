"""Reading portal forms."""

from __future__ import annotations

from aiohttp import web


async def read_form(request: web.Request) -> dict[str, str]:
    """A urlencoded form as plain strings (the last value of a repeated field is ignored)."""
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise web.HTTPBadRequest()
    data = await request.post()
    return {key: value for key, value in data.items() if isinstance(value, str)}
