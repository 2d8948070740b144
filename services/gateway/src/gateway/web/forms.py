"""Reading portal forms."""

from __future__ import annotations

from aiohttp import web

from gateway.request_bodies import BodyRefused, read_form_fields


async def read_form(request: web.Request) -> dict[str, str]:
    """The submitted form as plain strings; an unreadable body is a 400/413/415 error page."""
    try:
        return await read_form_fields(request)
    except BodyRefused as refused:
        if refused.status == 413:
            raise web.HTTPRequestEntityTooLarge(
                max_size=request.client_max_size, actual_size=request.content_length or 0
            ) from None
        if refused.status == 415:
            raise web.HTTPUnsupportedMediaType() from None
        raise web.HTTPBadRequest() from None
