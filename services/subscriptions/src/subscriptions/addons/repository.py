"""The only module that reads and writes the ``addons`` collection.

Every read takes the owning business and mode, so another business's (or the
other mode's) add-on is simply not found. What every catalogue collection does
(get, replace, archive, audit) is :class:`CatalogueRepository`'s; the lookup
of several add-ons by id is this module's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_kit.audit import AUDIT_INDEXES
from billing_kit.scoping import Mode, PageRequest
from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from subscriptions.addons.models import Addon
from subscriptions.catalogue.repository import CatalogueRepository, newest_first_index

ADDONS = "addons"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    # Every add-on change writes an audit entry (record_change).
    **AUDIT_INDEXES,
    ADDONS: [
        # The merchant's list, live or archived, newest first.
        newest_first_index("business_addons_newest_first"),
    ],
}


class AddonsRepository(CatalogueRepository[Addon]):
    """Reads and writes of add-ons; the use cases decide, this module only stores."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        super().__init__(
            db, collection=ADDONS, model=Addon, id_field="addon_id", audit_kind="addon"
        )

    async def get_many(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> dict[str, Addon]:
        """The business's add-ons among ``addon_ids`` (archived too), by id; unknown ids absent."""
        if not addon_ids:
            return {}
        found = await self._find(
            {"_id": {"$in": list(addon_ids)}, "business_id": business_id, "mode": mode}
        )
        return {addon.addon_id: addon for addon in found}

    async def list_page(
        self, business_id: str, mode: Mode, *, archived: bool, page: PageRequest
    ) -> list[Addon]:
        """One page of the business's add-ons, newest first."""
        return await self._newest_first(
            {"business_id": business_id, "mode": mode, "archived": archived}, page
        )
