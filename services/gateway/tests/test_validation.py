"""Unit tests: request models and the error -> HTTP problem mapping."""

from __future__ import annotations

import json

import grpc
import pytest
from billing_kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Reason,
    Unauthenticated,
)
from gateway.api.schemas import CreateCustomerBody, ListCustomersQuery
from gateway.problems import field_errors, from_domain_error, validation_problem
from pydantic import ValidationError


class TestCreateCustomerBody:
    def test_accepts_the_sdk_shape(self) -> None:
        body = CreateCustomerBody.model_validate(
            {"email": "ada@example.com", "name": " Ada Lovelace ", "phone_number": "+393331234567"}
        )
        assert body.email == "ada@example.com"
        assert body.name == "Ada Lovelace"
        assert body.phone_number == "+393331234567"

    def test_phone_number_is_optional_and_may_be_null(self) -> None:
        body = CreateCustomerBody.model_validate(
            {"email": "ada@example.com", "name": "Ada", "phone_number": None}
        )
        assert body.phone_number is None

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"name": "Ada"}, "email"),
            ({"email": "not-an-email", "name": "Ada"}, "email"),
            ({"email": "ada@", "name": "Ada"}, "email"),
            ({"email": "ada@example.com"}, "name"),
            ({"email": "ada@example.com", "name": "   "}, "name"),
            (
                {"email": "ada@example.com", "name": "Ada", "phone_number": "333 123"},
                "phone_number",
            ),
            ({"email": "ada@example.com", "name": "Ada", "nickname": "A"}, "nickname"),
            ({"email": "ada@example.com", "name": "Ada", "metadata": {"n": 1}}, "metadata.n"),
            ({"email": "ada@example.com", "name": "Ada", "metadata": []}, "metadata"),
            (
                {"email": "ada@example.com", "name": "Ada", "preferred_locale": "xx"},
                "preferred_locale",
            ),
        ],
    )
    def test_rejects_with_the_offending_field_named(self, payload: dict, field: str) -> None:
        with pytest.raises(ValidationError) as info:
            CreateCustomerBody.model_validate(payload)
        assert [e["field"] for e in field_errors(info.value)] == [field]

    def test_unknown_field_is_reported_as_unknown(self) -> None:
        with pytest.raises(ValidationError) as info:
            CreateCustomerBody.model_validate({"email": "a@example.com", "name": "A", "x": 1})
        problem = validation_problem(info.value, where="body")
        assert problem.status == 422
        assert problem.code == "INVALID_REQUEST_BODY"
        assert problem.errors == [
            {"field": "x", "message": "Unknown field", "type": "extra_forbidden"}
        ]

    def test_errors_never_echo_the_submitted_value(self) -> None:
        with pytest.raises(ValidationError) as info:
            CreateCustomerBody.model_validate({"email": "secret-value-123", "name": "A"})
        body = validation_problem(info.value, where="body").to_dict()
        assert "secret-value-123" not in json.dumps(body)


class TestListCustomersQuery:
    def test_defaults_match_dodo(self) -> None:
        query = ListCustomersQuery.model_validate({})
        assert (query.page_size, query.page_number, query.email) == (10, 0, None)

    def test_parses_strings_from_the_query(self) -> None:
        query = ListCustomersQuery.model_validate({"page_size": "25", "page_number": "2"})
        assert (query.page_size, query.page_number) == (25, 2)

    @pytest.mark.parametrize(
        "params",
        [
            {"page_size": "0"},
            {"page_size": "101"},
            {"page_number": "-1"},
            {"page_size": "ten"},
            {"name": "Ada"},
        ],
    )
    def test_rejects_bad_or_unsupported_parameters(self, params: dict) -> None:
        with pytest.raises(ValidationError):
            ListCustomersQuery.model_validate(params)


class TestDomainErrorMapping:
    @pytest.mark.parametrize(
        ("error", "status"),
        [
            (NotFound("missing"), 404),
            (PermissionDenied("not yours"), 404),
            (InvalidArgument("bad"), 422),
            (AlreadyExists("dup"), 409),
            (FailedPrecondition("state"), 409),
            (Unauthenticated("who"), 401),
            (DomainError("odd"), 502),
        ],
    )
    def test_status(self, error: DomainError, status: int) -> None:
        assert from_domain_error(error).status == status

    def test_foreign_resource_reads_exactly_like_a_missing_one(self) -> None:
        missing = from_domain_error(NotFound("customer cus_1 not found")).to_dict()
        foreign = from_domain_error(PermissionDenied("belongs to biz_2")).to_dict()
        assert missing == foreign
        assert "biz_2" not in json.dumps(foreign)

    def test_backend_reason_becomes_the_code(self) -> None:
        problem = from_domain_error(AlreadyExists("taken", reason=Reason.EMAIL_TAKEN))
        assert (problem.status, problem.code, problem.detail) == (409, "EMAIL_TAKEN", "taken")

    def test_only_unavailable_backends_invite_a_retry(self) -> None:
        conflict = from_domain_error(AlreadyExists("dup")).to_response()
        assert conflict.headers["x-should-retry"] == "false"
        assert conflict.content_type == "application/problem+json"


def test_unavailable_status_maps_to_503() -> None:
    from gateway.problems import from_rpc_error

    class FakeRpcError(grpc.aio.AioRpcError):
        def __init__(self, code: grpc.StatusCode) -> None:
            super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")

    assert from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE)).status == 503
    assert from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED)).status == 503
    assert from_rpc_error(FakeRpcError(grpc.StatusCode.INTERNAL)).status == 502
