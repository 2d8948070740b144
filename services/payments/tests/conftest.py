"""Fixtures of the payments tests: the service on real SecantusDB and a browser-less page client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.testing import RunningService, running_service
from payments.app import PaymentsRuntime, create_app
from payments.config import PaymentsSettings
from yarl import URL

RETURN_URL = "https://shop.example/back?from=portal"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest_asyncio.fixture
async def service(mongo_url: str) -> AsyncIterator[RunningService[PaymentsRuntime]]:
    """The payments service on free ports (gRPC, ops, hosted page) with its own database."""
    async with running_service(
        create_app, PaymentsSettings, mongo_url=mongo_url, http_port=0
    ) as running:
        yield running


@pytest.fixture
def stub(service: RunningService[PaymentsRuntime]) -> payments_pb2_grpc.PaymentsServiceStub:
    return payments_pb2_grpc.PaymentsServiceStub(service.channel)


@dataclass
class PageReply:
    status: int
    text: str
    location: str

    def query(self) -> dict[str, str]:
        return dict(URL(self.location).query)


class PageClient:
    """What a browser does with the hosted page, without a browser."""

    def __init__(
        self, stub: payments_pb2_grpc.PaymentsServiceStub, http: aiohttp.ClientSession
    ) -> None:
        self.stub = stub
        self.http = http

    async def session(
        self,
        *,
        customer_id: str = "cus_1",
        business_id: str = "bus_1",
        purpose: int = payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
        **fields: Any,
    ) -> payments_pb2.PaymentSession:
        return await self.stub.CreatePaymentSession(
            payments_pb2.CreatePaymentSessionRequest(
                business_id=business_id,
                mode=common_pb2.MODE_TEST,
                customer_id=customer_id,
                purpose=purpose,
                return_url=RETURN_URL,
                **fields,
            )
        )

    async def get(self, url: str, **headers: str) -> PageReply:
        async with self.http.get(url, headers=headers, allow_redirects=False) as response:
            return PageReply(
                response.status, await response.text(), response.headers.get("Location", "")
            )

    async def post(self, url: str, form: dict[str, str], **headers: str) -> PageReply:
        async with self.http.post(
            url, data=form, headers=headers, allow_redirects=False
        ) as response:
            return PageReply(
                response.status, await response.text(), response.headers.get("Location", "")
            )

    async def submit_card(
        self, url: str, number: str, *, expiry: str = "12/34", cvc: str = "987", **headers: str
    ) -> PageReply:
        page = await self.get(url, **headers)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on the page ({page.status})"
        form = {
            "csrf_token": match.group(1),
            "cc-name": "Ada Lovelace",
            "cc-number": number,
            "cc-exp": expiry,
            "cc-csc": cvc,
        }
        return await self.post(url, form, **headers)

    async def answer_challenge(self, url: str, action: str) -> PageReply:
        page = await self.get(url)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on the challenge page ({page.status})"
        return await self.post(url, {"csrf_token": match.group(1), "action": action})

    async def save_card(
        self, number: str, customer_id: str = "cus_1", business_id: str = "bus_1"
    ) -> str:
        created = await self.session(customer_id=customer_id, business_id=business_id)
        reply = await self.submit_card(created.url, number)
        assert reply.status == 303, reply.text
        return reply.query()["payment_method_id"]


@pytest_asyncio.fixture
async def page(stub: payments_pb2_grpc.PaymentsServiceStub) -> AsyncIterator[PageClient]:
    async with aiohttp.ClientSession() as http:
        yield PageClient(stub, http)
