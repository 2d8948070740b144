"""Who sells and who buys: the business and the customer, asked of auth over gRPC.

An invoice prints a snapshot of both, taken once when its PDF is prepared.
Auth being briefly unreachable is retried here (a few seconds, with backoff);
if it stays down, :class:`PartiesUnavailable` tells the caller to try again
later; nothing is lost and no event is dead-lettered for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing_kit.errors import NotFound
from billing_kit.scoping import mode_to_proto
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from invoicing.models import DEFAULT_LOCALE, Buyer, BuyerDetails, Invoice, Seller
from invoicing.pdf import language_of

log = logging.getLogger(__name__)


class PartiesUnavailable(Exception):
    """Auth could not be reached (or kept failing) within the retry budget."""


@dataclass(frozen=True)
class Parties:
    """The seller and buyer of an invoice, and the language it is written in."""

    seller: Seller
    buyer: Buyer
    locale: str
    # The customer's own billing details (auth), when set: they take precedence
    # over the billing address a payment carries.
    billing: BuyerDetails | None = None


class PartyDirectory(Protocol):
    """Where the invoice's seller and buyer come from."""

    async def parties_of(self, invoice: Invoice) -> Parties:
        """Seller, buyer and language for ``invoice``; raises PartiesUnavailable."""
        ...


class AuthDirectory:
    """Reads the business (GetBusiness) and the customer (GetCustomer) from auth."""

    def __init__(self, channel: grpc.aio.Channel, *, retry_seconds: float = 8.0) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._retry_seconds = retry_seconds

    async def parties_of(self, invoice: Invoice) -> Parties:
        """Seller and buyer of ``invoice``; the customer's language, else the business's."""
        business = await self._ask(
            lambda: self._stub.GetBusiness(
                auth_pb2.GetBusinessRequest(business_id=invoice.business_id)
            )
        )
        customer = await self._ask(
            lambda: self._stub.GetCustomer(
                auth_pb2.GetCustomerRequest(
                    business_id=invoice.business_id,
                    mode=mode_to_proto(invoice.mode),
                    customer_id=invoice.customer_id,
                )
            )
        )
        seller = Seller()
        if isinstance(business, auth_pb2.Business):
            seller = Seller(
                name=business.name,
                address=business.address,
                tax_id=business.tax_id,
                support_email=business.support_email,
                logo_url=business.branding.logo_url,
                accent_color=business.branding.primary_color,
            )
        else:
            # Auth says the business does not exist: print what we know rather
            # than leave the customer without an invoice.
            log.warning("business unknown to auth", extra={"business_id": invoice.business_id})
        buyer = Buyer()
        locale = ""
        billing: BuyerDetails | None = None
        if isinstance(customer, auth_pb2.Customer):
            buyer = Buyer(name=customer.name, email=customer.email)
            locale = customer.preferred_locale
            if customer.HasField("billing_details") and customer.billing_details.country:
                details = customer.billing_details
                billing = BuyerDetails(
                    country=details.country,
                    city=details.city,
                    state=details.state,
                    street=details.street,
                    zipcode=details.zipcode,
                    tax_id=details.tax_id,
                    business_name=details.business_name,
                )
        else:
            log.warning("customer unknown to auth", extra={"customer_id": invoice.customer_id})
        business_locale = business.locale if isinstance(business, auth_pb2.Business) else ""
        return Parties(seller, buyer, choose_locale(locale, business_locale), billing)

    async def _ask(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()``, retried while auth is unreachable; None when auth says NOT_FOUND."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(grpc.aio.AioRpcError),
                wait=wait_exponential(multiplier=0.2, max=2.0),
                stop=stop_after_delay(self._retry_seconds),
                reraise=True,
            ):
                with attempt:
                    return await call()
        except NotFound:
            return None
        except grpc.aio.AioRpcError as exc:
            raise PartiesUnavailable(f"auth unavailable ({exc.code().name})") from exc
        raise AssertionError("not reached: the retry returns or reraises")


def choose_locale(customer_locale: str, business_locale: str) -> str:
    """The customer's language when invoices can be written in it, else the business's, else en."""
    for candidate in (customer_locale, business_locale):
        if candidate and language_of(candidate) == candidate.split("-")[0].lower():
            return language_of(candidate)
    return DEFAULT_LOCALE
