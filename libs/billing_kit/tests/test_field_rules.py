"""The shared field rules, and the field of a domain error crossing gRPC."""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest
from billing_kit.errors import InvalidArgument
from billing_kit.field_rules import (
    HTTP_URL_PATTERN,
    NEXT_PATH_PATTERN,
    PersonName,
    PhoneNumber,
    check_http_url,
    check_next_path,
    check_phone_number,
)
from billing_kit.grpc_client import create_channel
from billing_kit.grpc_server import GrpcServer
from pydantic import TypeAdapter, ValidationError

NAME = TypeAdapter(PersonName)


@pytest.mark.parametrize(
    "url",
    [
        "https://user@host.example",
        "https://user:secret@host.example/x",
        "javascript:alert(1)",
        "//host.example/x",
        "https://host.example/a b",
        'https://host.example/"x',
        "https://host.example\\@evil.example",
        "ftp://host.example",
        "https://",
    ],
)
def test_return_urls_with_credentials_or_odd_characters_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="no user name"):
        check_http_url(url)
    # The published pattern says the same thing as the check.
    assert re.fullmatch(HTTP_URL_PATTERN, url) is None


@pytest.mark.parametrize(
    "url", ["https://shop.example", "http://127.0.0.1:8080/x?y=1#z", "https://a.example/p@x"]
)
def test_plain_http_urls_pass(url: str) -> None:
    assert check_http_url(url) == url
    assert re.fullmatch(HTTP_URL_PATTERN, url)


@pytest.mark.parametrize(
    "path",
    [
        "/b/biz_2/invoices",  # another business
        "/b/biz_1/../x",
        "/b/biz_1//evil.example",
        "/b/biz_1/%2e%2e/x",
        "/b/biz_1/.hidden",
        "https://user@host",
        "/b/biz_1/x\\y",
        "https://evil.example/b/biz_1/",
        "//evil.example/b/biz_1/",
        "/b/biz_1/../biz_2/profile",
        "/b/biz_1/x\r\nSet-Cookie: a=b",
        "/b/biz_1",
        "/b/biz_1/" + "a" * 600,
    ],
)
def test_next_paths_outside_the_business_portal_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        check_next_path(path, "biz_1")


def test_next_path_inside_the_portal_passes_and_matches_the_pattern() -> None:
    for path in (
        "/b/biz_1/",
        "/b/biz_1/invoices",
        "/b/biz_1/invoices/inv_1?tab=pdf",
        "/b/biz_1/subscriptions/sub_9/payment-method",
    ):
        assert check_next_path(path, "biz_1") == path
        assert re.fullmatch(NEXT_PATH_PATTERN, path)


@pytest.mark.parametrize("name", ["", "   ", "Ada\nLovelace", "Ada\r", "A\x00", "x" * 201])
def test_names_must_have_text_and_no_control_characters(name: str) -> None:
    with pytest.raises(ValidationError):
        NAME.validate_python(name)


def test_names_are_trimmed_and_phone_numbers_normalised() -> None:
    assert NAME.validate_python("  Ada Lovelace ") == "Ada Lovelace"
    assert check_phone_number("+39 333 123 4567") == "+393331234567"
    with pytest.raises(ValueError):
        check_phone_number("+1 000")


async def _refuse(request: bytes, context: Any) -> bytes:
    raise InvalidArgument("return_url: bad", reason="INVALID_RETURN_URL", field="return_url")


async def test_the_field_of_an_invalid_argument_reaches_the_caller() -> None:
    server = GrpcServer(service="test", host="127.0.0.1", port=0)

    def register(srv: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(_refuse)
        srv.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.v1.Refuse", {"Refuse": handler}),)
        )

    server.add_service(register, "test.v1.Refuse")
    port = await server.start()
    channel = create_channel(f"127.0.0.1:{port}", timeout=2)
    try:
        # The channel's interceptor raises the server's DomainError, field included.
        with pytest.raises(InvalidArgument) as info:
            await channel.unary_unary("/test.v1.Refuse/Refuse")(b"")
        assert (info.value.reason, info.value.field) == ("INVALID_RETURN_URL", "return_url")
    finally:
        await channel.close()
        await server.stop(1)


@pytest.mark.parametrize("blank", ["", "   "])
def test_the_api_refuses_a_blank_phone_number_where_auth_reads_it_as_none(blank: str) -> None:
    # The API says "none" with null (and its document offers only null or a number);
    # auth's proto convention is "" for unset, so its own check reads blank as None.
    with pytest.raises(ValidationError, match="send null"):
        TypeAdapter(PhoneNumber).validate_python(blank)
    assert check_phone_number(blank) is None
    assert TypeAdapter(PhoneNumber).validate_python("+39 06 6982 0000") == "+390669820000"
