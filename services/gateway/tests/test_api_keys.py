"""Unit tests: API key authentication and its short cache."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from billing.auth.v1 import auth_pb2
from billing.common.v1 import common_pb2
from billing_kit.errors import Unauthenticated
from gateway.api_keys import ApiKeyAuthenticator, InvalidApiKey, Merchant


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stub:
    """AuthenticateApiKey only, with a key table the test can change."""

    def __init__(self) -> None:
        self.valid: dict[str, tuple[str, int]] = {"sk_test_good": ("biz_1", common_pb2.MODE_TEST)}
        self.calls = 0
        self.down = False
        self.delay = 0.0  # seconds auth takes to answer (a slow fake, not a wait)

    async def AuthenticateApiKey(self, request: Any, **call_options: Any) -> Any:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.down:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
            )
        if request.secret not in self.valid:
            raise Unauthenticated("invalid key")
        business_id, mode = self.valid[request.secret]
        return auth_pb2.AuthenticateApiKeyResponse(business_id=business_id, mode=mode, key_id="k1")


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def authenticator(stub: Stub, clock: Clock) -> ApiKeyAuthenticator:
    return ApiKeyAuthenticator(stub, ttl_seconds=5, clock=clock)  # type: ignore[arg-type]


async def test_resolves_business_and_mode(authenticator: ApiKeyAuthenticator) -> None:
    assert await authenticator.authenticate("sk_test_good") == Merchant("biz_1", "test", "k1")


async def test_repeat_calls_within_the_window_ask_auth_once(
    authenticator: ApiKeyAuthenticator, stub: Stub
) -> None:
    for _ in range(5):
        await authenticator.authenticate("sk_test_good")
    assert stub.calls == 1


async def test_revocation_is_honoured_after_the_window(
    authenticator: ApiKeyAuthenticator, stub: Stub, clock: Clock
) -> None:
    await authenticator.authenticate("sk_test_good")
    del stub.valid["sk_test_good"]
    clock.now += 4.9
    await authenticator.authenticate("sk_test_good")  # still cached
    clock.now += 0.2
    with pytest.raises(InvalidApiKey):
        await authenticator.authenticate("sk_test_good")


async def test_unknown_key_is_rejected_and_remembered(
    authenticator: ApiKeyAuthenticator, stub: Stub
) -> None:
    for _ in range(3):
        with pytest.raises(InvalidApiKey):
            await authenticator.authenticate("sk_test_bad")
    assert stub.calls == 1


@pytest.mark.parametrize("secret", ["", "x" * 300, "sk_tést"])
async def test_malformed_secret_never_reaches_auth(
    authenticator: ApiKeyAuthenticator, stub: Stub, secret: str
) -> None:
    with pytest.raises(InvalidApiKey):
        await authenticator.authenticate(secret)
    assert stub.calls == 0


async def test_outage_is_not_cached(authenticator: ApiKeyAuthenticator, stub: Stub) -> None:
    stub.down = True
    with pytest.raises(grpc.aio.AioRpcError):
        await authenticator.authenticate("sk_test_good")
    stub.down = False
    assert (await authenticator.authenticate("sk_test_good")).business_id == "biz_1"


async def test_concurrent_requests_share_one_call(
    authenticator: ApiKeyAuthenticator, stub: Stub
) -> None:
    stub.delay = 0.05
    results = await asyncio.gather(*(authenticator.authenticate("sk_test_good") for _ in range(10)))
    assert {r.business_id for r in results} == {"biz_1"}
    assert stub.calls == 1


async def test_cache_is_bounded(stub: Stub, clock: Clock) -> None:
    authenticator = ApiKeyAuthenticator(stub, ttl_seconds=5, max_entries=2, clock=clock)  # type: ignore[arg-type]
    stub.valid.update({"a": ("biz_a", 1), "b": ("biz_b", 1), "c": ("biz_c", 1)})
    for key in ("a", "b", "c", "a"):
        await authenticator.authenticate(key)
    assert stub.calls == 4  # "a" was evicted by "c"
