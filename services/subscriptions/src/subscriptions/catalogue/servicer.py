"""The gRPC steps products' and add-ons' servicers share: scope, asking key, archive."""

from __future__ import annotations

from typing import Protocol, TypeVar

from billing_kit.audit import Actor
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.scoping import Mode, mode_from_proto

from subscriptions.catalogue.service import CatalogueService, merchant_actor

T = TypeVar("T")


class ScopedRequest(Protocol):
    """The scope every catalogue request carries."""

    @property
    def business_id(self) -> str: ...

    @property
    def mode(self) -> int: ...


class WriteRequest(ScopedRequest, Protocol):
    """A write request: its scope and the merchant's API key that asks (for the audit)."""

    @property
    def merchant_key_id(self) -> str: ...


def business(business_id: str) -> str:
    """The calling business's id; an empty one is the caller's mistake (INVALID_SCOPE)."""
    if not business_id:
        raise InvalidArgument("business_id is required", reason=Reason.INVALID_SCOPE)
    return business_id


def scope(request: ScopedRequest) -> tuple[str, Mode]:
    """The request's business (required) and mode, in the order the use cases take them."""
    return business(request.business_id), mode_from_proto(request.mode)


def actor(request: WriteRequest) -> Actor:
    """Who the audit names: the merchant's key, or the system when none is given."""
    return merchant_actor(request.merchant_key_id)


async def set_archived(
    service: CatalogueService[T], request: WriteRequest, item_id: str, *, archived: bool
) -> T:
    """Archive or unarchive ``item_id`` of the request's business and mode, as its key."""
    return await service.set_archived(
        *scope(request), item_id, archived=archived, actor=actor(request)
    )
