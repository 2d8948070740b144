"""Demo data, created through auth's gRPC API only (never by writing to a database).

Idempotent: the demo business is found again by name, customers are created
by email (auth returns the existing one), and the demo API key's secret, which
auth can never give back, is kept in ``.data/demo.json`` and reused while auth
still accepts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing_kit.scoping import Mode, mode_to_proto

log = logging.getLogger("devstack.seed")

DEMO_BUSINESS_NAME = "Demo Business"
DEMO_CUSTOMERS: tuple[tuple[str, str], ...] = (
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.com", "Grace Hopper"),
    ("linus@example.com", "Linus Torvalds"),
)
# The seller block of the demo (and test) businesses' invoices.
DEMO_ADDRESS = "Via Roma 1\n20121 Milano MI\nItalia"
DEMO_TAX_ID = "IT01234567890"
RPC_TIMEOUT_SECONDS = 10.0
_PAGE_SIZE = 100


@dataclass
class BusinessWithKey:
    """A business and one test-mode API key secret for it."""

    business_id: str
    name: str
    api_key_id: str
    api_key_secret: str
    customer_ids: list[str] = field(default_factory=list)


class AuthAdmin:
    """The few auth RPCs an operator (or a test) needs to set a business up."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = auth_pb2_grpc.AuthServiceStub(channel)

    async def find_business(self, name: str) -> auth_pb2.Business | None:
        """The oldest business with exactly this name, or None."""
        page = 0
        while True:
            response = await self.stub.ListBusinesses(
                auth_pb2.ListBusinessesRequest(page_size=_PAGE_SIZE, page_number=page),
                timeout=RPC_TIMEOUT_SECONDS,
            )
            for business in response.businesses:
                if business.name == name:
                    found: auth_pb2.Business = business
                    return found
            if len(response.businesses) < _PAGE_SIZE:
                return None
            page += 1

    async def create_business(self, name: str, support_email: str) -> auth_pb2.Business:
        """Create a business with default branding."""
        business: auth_pb2.Business = await self.stub.CreateBusiness(
            auth_pb2.CreateBusinessRequest(
                name=name,
                support_email=support_email,
                locale="en",
                branding=auth_pb2.Branding(primary_color="#4f46e5"),
                # Printed in the seller block of every invoice.
                address=DEMO_ADDRESS,
                tax_id=DEMO_TAX_ID,
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
        return business

    async def create_test_key(self, business_id: str, name: str) -> tuple[str, str]:
        """A new test-mode API key: (key_id, secret)."""
        return await self.create_key(business_id, name, mode="test")

    async def create_key(self, business_id: str, name: str, *, mode: Mode) -> tuple[str, str]:
        """A new API key of either mode: (key_id, secret)."""
        response = await self.stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(
                business_id=business_id, mode=mode_to_proto(mode), name=name
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
        return str(response.api_key.key_id), str(response.secret)

    async def key_still_works(self, secret: str, business_id: str) -> bool:
        """True when auth accepts the secret for this business in test mode."""
        try:
            response = await self.stub.AuthenticateApiKey(
                auth_pb2.AuthenticateApiKeyRequest(secret=secret), timeout=RPC_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.INVALID_ARGUMENT,
            ):
                return False
            raise
        return bool(response.business_id == business_id and response.mode == mode_to_proto("test"))

    async def create_customer(
        self, business_id: str, email: str, name: str, *, mode: Mode = "test"
    ) -> str:
        """Create (or find, by email) a customer (test mode unless told); returns its id."""
        response = await self.stub.CreateCustomer(
            auth_pb2.CreateCustomerRequest(
                business_id=business_id, mode=mode_to_proto(mode), email=email, name=name
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
        return str(response.customer.customer_id)

    async def business_with_key(self, name: str, support_email: str) -> BusinessWithKey:
        """A fresh business plus a test-mode key (tests: one per scenario)."""
        business = await self.create_business(name, support_email)
        key_id, secret = await self.create_test_key(business.business_id, "devstack")
        return BusinessWithKey(business.business_id, business.name, key_id, secret)


def _load_state(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(path: Path, demo: BusinessWithKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(demo), indent=2) + "\n")
    # The file holds a secret: readable by its owner only.
    tmp.chmod(0o600)
    tmp.replace(path)


async def seed_demo(auth_target: str, state_path: Path) -> BusinessWithKey:
    """Find or create the demo business, its test API key and a few customers."""
    async with grpc.aio.insecure_channel(auth_target) as channel:
        admin = AuthAdmin(channel)
        business = await admin.find_business(DEMO_BUSINESS_NAME)
        if business is None:
            business = await admin.create_business(DEMO_BUSINESS_NAME, "support@example.com")
            log.info("created the demo business %s", business.business_id)
        state = await asyncio.to_thread(_load_state, state_path)
        secret = str(state.get("api_key_secret", ""))
        key_id = str(state.get("api_key_id", ""))
        reusable = (
            state.get("business_id") == business.business_id
            and bool(secret)
            and await admin.key_still_works(secret, business.business_id)
        )
        if not reusable:
            key_id, secret = await admin.create_test_key(business.business_id, "devstack demo")
        demo = BusinessWithKey(business.business_id, business.name, key_id, secret)
        for email, name in DEMO_CUSTOMERS:
            demo.customer_ids.append(await admin.create_customer(business.business_id, email, name))
        await asyncio.to_thread(_save_state, state_path, demo)
        return demo
