"""The one place the gateway reads request bodies: JSON objects and HTML forms.

Whatever a client sends (JSON nested a thousand levels deep, bytes that are
not UTF-8, an unknown ``charset``, a multipart body without its boundary) ends
here as :class:`BodyRefused` with a 400, 413 or 415 status, before any handler
decides anything, so a malformed body can never become a 500 or a partial
write. The merchant API turns it into a problem document
(:func:`gateway.api.parsing.parse_json_body`), the portal into its error page
(``web`` form reading).

JSON is parsed with pydantic-core's parser (the one pydantic validates with):
it refuses nesting deeper than a small fixed limit with an ordinary error,
where the standard library's ``json`` recurses until ``RecursionError``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pydantic_core
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Bodies are UTF-8: JSON by RFC 8259, forms because every page says so.
_UTF8 = ("utf-8", "utf8")


class BodyRefused(Exception):
    """A body the gateway will not read; ``status`` is 400, 413 or 415."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def _too_large() -> BodyRefused:
    return BodyRefused(413, "PAYLOAD_TOO_LARGE", "Request body too large")


async def _read_bytes(request: web.Request) -> bytes:
    try:
        return await request.read()  # bounded by the app's client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None


def _charset_is_utf8(request: web.Request) -> bool:
    charset = request.charset
    return charset is None or charset.lower() in _UTF8


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object: 415 if not ``application/json``, 400 if not an object."""
    if request.content_type != JSON_CONTENT_TYPE or not _charset_is_utf8(request):
        raise BodyRefused(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Send the body as UTF-8 JSON (Content-Type: application/json)",
        )
    raw = await _read_bytes(request)
    try:
        # NaN and Infinity are not JSON; the nesting limit is the parser's own.
        payload = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError:
        raise BodyRefused(
            400, "MALFORMED_JSON", "The request body is not valid JSON (or nested too deeply)"
        ) from None
    if not isinstance(payload, dict):
        raise BodyRefused(400, "MALFORMED_JSON", "The request body must be a JSON object")
    return payload


async def read_form_fields(request: web.Request) -> dict[str, str]:
    """A submitted form as plain strings; the first value of a repeated field wins.

    Files in a multipart form are ignored (no page takes one). 415 for other
    content types or a charset other than UTF-8, 400 for a body that does not
    decode or parse.
    """
    if request.content_type not in FORM_CONTENT_TYPES or not _charset_is_utf8(request):
        raise BodyRefused(415, "UNSUPPORTED_MEDIA_TYPE", "Send the form as UTF-8")
    if request.content_type == "multipart/form-data":
        return await _multipart_fields(request)
    raw = await _read_bytes(request)
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except ValueError:  # UnicodeDecodeError, raw or percent-encoded
        raise BodyRefused(400, "MALFORMED_FORM", "The form is not valid UTF-8") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


async def _multipart_fields(request: web.Request) -> dict[str, str]:
    try:
        data = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None
    except (ValueError, LookupError, HttpProcessingError):
        # No boundary, a broken part header, a part that is not UTF-8 or names an
        # unknown charset: aiohttp says so with these.
        raise BodyRefused(400, "MALFORMED_FORM", "The form could not be read") from None
    fields: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str):
            fields.setdefault(key, value)
    return fields
