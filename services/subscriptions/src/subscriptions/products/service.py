"""Use cases of products: create, read, list, change, archive and unarchive.

The rules are the models' (:class:`ProductDraft`); every write validates the
whole resulting product, so an update can never leave a product that create
would have refused. A refusal names the field and writes nothing. Every change
commits together with its audit entry (who, what, when).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol

from billing_kit.audit import Actor
from billing_kit.clock import Clock
from billing_kit.errors import FailedPrecondition, InvalidArgument, Reason
from billing_kit.scoping import Mode, PageRequest
from pydantic import ValidationError

from subscriptions.catalogue.service import (
    SYSTEM,
    CatalogueKind,
    CatalogueService,
    CatalogueStore,
    RunInTransaction,
    first_error,
)
from subscriptions.products.models import Product, ProductDraft, new_product_id

# What an update may change (the merchant-set fields), and which of them may be cleared.
UPDATABLE_FIELDS = frozenset(ProductDraft.model_fields)
CLEARABLE_FIELDS = frozenset(
    {
        "description",
        "license_key_activations_limit",
        "license_key_duration",
        "license_key_activation_message",
        "metadata",
    }
)

PRODUCT = CatalogueKind(
    name="product",
    not_found_message="product not found",
    not_found_reason=Reason.PRODUCT_NOT_FOUND,
    invalid_reason=Reason.INVALID_PRODUCT,
    updatable=UPDATABLE_FIELDS,
    clearable=CLEARABLE_FIELDS,
)


class ProductStore(CatalogueStore[Product], Protocol):
    """What the use cases need from storage: the catalogue's, plus the product lists."""

    async def list_page(
        self,
        business_id: str,
        mode: Mode,
        *,
        archived: bool,
        recurring: bool | None,
        page: PageRequest,
    ) -> list[Product]: ...

    async def list_plan_group(
        self, business_id: str, mode: Mode, plan_group: str, *, limit: int = 100
    ) -> list[Product]: ...


class AddonView(Protocol):
    """What products need to know of an add-on (subscriptions.addons.models.Addon)."""

    @property
    def currency(self) -> str: ...

    @property
    def archived(self) -> bool: ...


class AddonLookup(Protocol):
    """The business's add-ons among some ids, by id (AddonsService.get_addons)."""

    def __call__(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> Awaitable[Mapping[str, AddonView]]: ...


def _unavailable_addons(message: str) -> FailedPrecondition:
    return FailedPrecondition(f"addons: {message}", reason=Reason.ADDON_UNAVAILABLE, field="addons")


def invalid_product(exc: ValidationError) -> InvalidArgument:
    """The first broken rule as an InvalidArgument naming its field (never echoing the value)."""
    path, message = first_error(exc)
    # Drop the union tag pydantic puts in a discriminated union's path (price.recurring_price.x).
    loc = [p for p in path if p not in ("one_time_price", "recurring_price")]
    field = ".".join(loc) or "product"
    if not loc and ": " in message:
        # A rule over several fields names the field it refuses ("addons: …").
        field, message = message.split(": ", 1)
    return PRODUCT.invalid(field, message)


class ProductsService(CatalogueService[Product]):
    """The catalogue of every business; also the in-process API of the rest of the service."""

    def __init__(
        self,
        store: ProductStore,
        run_in_transaction: RunInTransaction,
        clock: Clock | None = None,
        addons: AddonLookup | None = None,
    ) -> None:
        super().__init__(store, run_in_transaction, clock, PRODUCT)
        self._products = store
        self._addons = addons

    async def _check_addons(
        self, business_id: str, mode: Mode, draft: ProductDraft, already: Sequence[str] = ()
    ) -> None:
        """The add-ons newly offered are live add-ons of this business and mode priced in
        the product's currency, else FailedPrecondition ``ADDON_UNAVAILABLE`` naming
        ``addons`` (the referenced add-ons' state, not the request's shape, is at fault);
        ones already offered stay offered."""
        new = [addon_id for addon_id in draft.addons if addon_id not in already]
        if not new:
            return
        found = await self._addons(business_id, mode, new) if self._addons else {}
        for addon_id in new:
            addon = found.get(addon_id)
            # Unknown and another business's or mode's read the same (nothing leaks).
            if addon is None or addon.archived:
                raise _unavailable_addons("no such live add-on")
            if addon.currency != draft.price.currency:
                raise _unavailable_addons(f"an add-on is not priced in {draft.price.currency}")

    async def create_product(
        self, business_id: str, mode: Mode, fields: Mapping[str, Any], *, actor: Actor = SYSTEM
    ) -> Product:
        """A new (live, not archived) product from the merchant's fields, audited."""
        try:
            draft = ProductDraft.model_validate(dict(fields))
        except ValidationError as exc:
            raise invalid_product(exc) from None
        await self._check_addons(business_id, mode, draft)
        now = self._clock.now()
        product = Product(
            product_id=new_product_id(),
            business_id=business_id,
            mode=mode,
            is_recurring=draft.is_recurring,
            archived=False,
            created_at=now,
            updated_at=now,
            **dict(draft),
        )
        return await self._insert(product, actor=actor)

    async def get_product(self, business_id: str, mode: Mode, product_id: str) -> Product:
        """The business's product (archived ones too, with ``archived=True``).

        Unknown, another business's or the other mode's id: NotFound
        (reason ``PRODUCT_NOT_FOUND``).
        """
        return await self._get(business_id, mode, product_id)

    async def list_products(
        self,
        business_id: str,
        mode: Mode,
        *,
        archived: bool,
        recurring: bool | None,
        page: PageRequest,
    ) -> list[Product]:
        """One page of live (or, with ``archived``, archived) products, newest first."""
        return await self._products.list_page(
            business_id, mode, archived=archived, recurring=recurring, page=page
        )

    async def list_plan_group(self, business_id: str, mode: Mode, plan_group: str) -> list[Product]:
        """The business's products in ``plan_group`` (archived ones too); none for ""."""
        return await self._products.list_plan_group(business_id, mode, plan_group)

    async def update_product(
        self,
        business_id: str,
        mode: Mode,
        product_id: str,
        changes: Mapping[str, Any],
        *,
        actor: Actor = SYSTEM,
    ) -> Product:
        """Apply ``changes`` (field -> new value; None clears a clearable field).

        The whole product is validated again after the change, in one transaction
        with the read it starts from and the audit entry naming the fields changed.
        """

        async def rebuild(current: Product) -> Product:
            merged = {**current.draft().model_dump(mode="python"), **changes}
            if merged.get("metadata") is None:
                merged["metadata"] = {}
            try:
                draft = ProductDraft.model_validate(merged)
            except ValidationError as exc:
                raise invalid_product(exc) from None
            await self._check_addons(business_id, mode, draft, already=current.addons)
            return current.model_copy(
                update={
                    **dict(draft),
                    "is_recurring": draft.is_recurring,
                    "updated_at": self._clock.now(),
                }
            )

        return await self._update(
            business_id, mode, product_id, changes, actor=actor, rebuild=rebuild
        )
