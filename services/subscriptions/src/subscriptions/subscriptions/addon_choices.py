"""Which add-ons a subscription may take: the one rule create and change-plan share.

A request names add-ons as ``(addon_id, quantity)`` pairs (Dodo's ``AttachAddonParam``).
Its **shape** is the caller's fault (INVALID_ARGUMENT, field ``addons``, HTTP 422): a
quantity below 1 or an add-on named twice. The **catalogue** refuses the rest of a
well-formed request (FAILED_PRECONDITION ``ADDON_UNAVAILABLE``, field ``addons``, HTTP 409,
as products do): an add-on the product does not offer (its ``addons``), an unknown,
another business's or mode's, or archived one (all read the same: nothing leaks), one in
another currency, or a quantity over the add-on's ``max_quantity`` (``Addon.allows``).
The add-ons are read in one batched call; nothing is written here. A duplicate is
checked after the catalogue's refusals of the same add-on, so a request the catalogue
would refuse anyway answers 409 whatever its shape (the API document can promise
"quantity >= 1" but not "each addon_id once").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from billing_kit.errors import FailedPrecondition, InvalidArgument, Reason
from billing_kit.scoping import Mode

from subscriptions.addons.models import Addon
from subscriptions.products.models import Product
from subscriptions.subscriptions.models import SubscriptionAddon

FIELD = "addons"


class AddonReader(Protocol):
    """The in-process add-ons API (``AddonsService.get_addons``)."""

    async def get_addons(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> Mapping[str, Addon]: ...


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(
        f"addons: {message}", reason=Reason.INVALID_SUBSCRIPTION_REQUEST, field=FIELD
    )


def _unavailable(message: str) -> FailedPrecondition:
    return FailedPrecondition(f"addons: {message}", reason=Reason.ADDON_UNAVAILABLE, field=FIELD)


def check_shape(requested: Sequence[tuple[str, int]]) -> None:
    """An id and at least one unit for each add-on (else INVALID_ARGUMENT ``addons``)."""
    for addon_id, quantity in requested:
        if not addon_id:
            raise _bad("addon_id is required")
        if quantity < 1:
            raise _bad("each add-on's quantity must be at least 1")


def snapshots(
    product: Product,
    currency: str,
    requested: Sequence[tuple[str, int]],
    found: Mapping[str, Addon],
) -> tuple[SubscriptionAddon, ...]:
    """The add-ons as the subscription keeps them, in the request's order, or the refusal."""
    chosen: list[SubscriptionAddon] = []
    for addon_id, quantity in requested:
        addon = found.get(addon_id)
        if addon_id not in product.addons or addon is None or addon.archived:
            raise _unavailable("no such add-on is offered with this product")
        if addon.currency != currency:
            raise _unavailable(f"an add-on is not priced in {currency}")
        if not addon.allows(quantity):
            raise _unavailable(f"at most {addon.max_quantity} units of {addon.name} may be chosen")
        if any(taken.addon_id == addon_id for taken in chosen):
            raise _bad("an add-on is named more than once")
        chosen.append(
            SubscriptionAddon(
                addon_id=addon.addon_id,
                name=addon.name,
                unit_price=addon.price,
                quantity=quantity,
                tax_category=str(addon.tax_category),
            )
        )
    return tuple(chosen)


async def choose(
    reader: AddonReader,
    product: Product,
    currency: str,
    requested: Sequence[tuple[str, int]],
) -> tuple[SubscriptionAddon, ...]:
    """Check ``requested`` against ``product``'s offer (one read of the add-ons)."""
    if not requested:
        return ()
    check_shape(requested)
    found = await reader.get_addons(
        product.business_id, product.mode, [addon_id for addon_id, _ in requested]
    )
    return snapshots(product, currency, requested, found)


async def offered(reader: AddonReader, products: Sequence[Product]) -> dict[str, Addon]:
    """Every add-on ``products`` offer, by id, in one read (plan options)."""
    if not products:
        return {}
    ids = list(dict.fromkeys(addon_id for product in products for addon_id in product.addons))
    if not ids:
        return {}
    first = products[0]
    return dict(await reader.get_addons(first.business_id, first.mode, ids))


def offers(product: Product, catalogue: Mapping[str, Addon], currency: str) -> tuple[Addon, ...]:
    """The add-ons a customer may choose with ``product`` now: the live ones it offers in
    ``currency``, in the product's order (what :func:`snapshots` would accept)."""
    return tuple(
        addon
        for addon_id in product.addons
        if (addon := catalogue.get(addon_id)) is not None
        and not addon.archived
        and addon.currency == currency
    )
