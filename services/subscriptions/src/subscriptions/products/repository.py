"""The only module that reads and writes the ``products`` collection.

Every read takes the owning business and mode, so another business's (or the
other mode's) product is simply not found. What every catalogue collection
does (get, replace, archive, audit) is :class:`CatalogueRepository`'s; the
product kinds and plan groups are this module's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_kit.audit import AUDIT_INDEXES
from billing_kit.scoping import Mode, PageRequest
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from subscriptions.catalogue.repository import CatalogueRepository, newest_first_index
from subscriptions.products.models import Product

PRODUCTS = "products"

# The merchant's list, newest first: live or archived, optionally one kind (recurring or
# one-time). Two indexes so both the filtered and the unfiltered list sort from an index.
INDEXES: Mapping[str, Sequence[IndexModel]] = {
    # Every product change writes an audit entry (record_change).
    **AUDIT_INDEXES,
    PRODUCTS: [
        newest_first_index("business_products_newest_first"),
        newest_first_index("business_products_by_kind_newest_first", "is_recurring"),
        # The plans of one plan group (ListPlanOptions).
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("plan_group", ASCENDING)],
            name="business_plan_group",
        ),
    ],
}


class ProductsRepository(CatalogueRepository[Product]):
    """Reads and writes of products; the use cases decide, this module only stores."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        super().__init__(
            db, collection=PRODUCTS, model=Product, id_field="product_id", audit_kind="product"
        )

    async def list_page(
        self,
        business_id: str,
        mode: Mode,
        *,
        archived: bool,
        recurring: bool | None,
        page: PageRequest,
    ) -> list[Product]:
        """One page of the business's products, newest first."""
        query: dict[str, Any] = {"business_id": business_id, "mode": mode, "archived": archived}
        if recurring is not None:
            query["is_recurring"] = recurring
        return await self._newest_first(query, page)

    async def list_plan_group(
        self, business_id: str, mode: Mode, plan_group: str, *, limit: int = 100
    ) -> list[Product]:
        """The business's products in ``plan_group`` (archived too; the caller filters)."""
        if not plan_group:
            return []
        return await self._find(
            {"business_id": business_id, "mode": mode, "plan_group": plan_group}, limit=limit
        )
