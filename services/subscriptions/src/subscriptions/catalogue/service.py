"""The use-case steps every catalogue (products, add-ons) shares.

Each catalogue validates its own fields (its draft model) and names its own
errors (:class:`CatalogueKind`); the steps around that are the same: which
fields an update may set or clear, the read-validate-replace-audit of an
update in one transaction, and archive/unarchive auditing only a real change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from billing_kit.audit import Actor
from billing_kit.clock import Clock, SystemClock
from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import Mode
from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

T = TypeVar("T")
R = TypeVar("R")

SYSTEM = Actor(kind="system", id="subscriptions")


def merchant_actor(api_key_id: str | None) -> Actor:
    """The merchant's API key that asked, or the system when no key is named."""
    return Actor(kind="merchant", id=api_key_id) if api_key_id else SYSTEM


def first_error(exc: ValidationError) -> tuple[list[str], str]:
    """The first broken rule of a draft: its field path and message, never the value."""
    first = exc.errors(include_url=False, include_input=False)[0]
    return [str(part) for part in first["loc"]], first["msg"].removeprefix("Value error, ")


class RunInTransaction(Protocol):
    """Runs ``work(session)`` in one database transaction (the kit's run_in_transaction)."""

    def __call__(self, work: Callable[[AsyncClientSession], Awaitable[R]]) -> Awaitable[R]: ...


@dataclass(frozen=True)
class CatalogueKind:
    """How one catalogue names itself: audit actions, error reasons, the update rules."""

    # The audit resource kind and the prefix of its actions ("product" -> product.created).
    name: str
    not_found_message: str
    not_found_reason: Reason
    invalid_reason: Reason
    # What an update may change (the merchant-set fields), and which of them may be cleared.
    updatable: frozenset[str]
    clearable: frozenset[str]

    def action(self, verb: str) -> str:
        """The audit action of ``verb`` (created, updated, archived, unarchived): dotted,
        past tense, e.g. ``product.created``."""
        return f"{self.name}.{verb}"

    def not_found(self) -> NotFound:
        """NotFound for an unknown, another business's or the other mode's id."""
        return NotFound(self.not_found_message, reason=self.not_found_reason)

    def invalid(self, field: str, message: str) -> InvalidArgument:
        """InvalidArgument naming ``field`` with this catalogue's reason."""
        return InvalidArgument(f"{field}: {message}", reason=self.invalid_reason, field=field)

    def check_changes(self, changes: Mapping[str, Any]) -> None:
        """Refuse a field an update may not set, or a None (clear) of one it may not clear."""
        for field, value in changes.items():
            if field not in self.updatable:
                raise self.invalid(field, "cannot be changed")
            if value is None and field not in self.clearable:
                raise self.invalid(field, "cannot be null")

    def clear(self, changes: dict[str, Any], cleared: Iterable[str]) -> None:
        """Add the fields a request names in ``cleared`` to ``changes`` as None.

        A field that may not be cleared, or that the same request also sets, is
        refused (which of the two was meant cannot be told).
        """
        for field in cleared:
            if field not in self.clearable or field in changes:
                raise self.invalid(field, "cannot be cleared")
            changes[field] = None


class CatalogueStore(Protocol[T]):
    """What the shared use-case steps need from storage (CatalogueRepository has it)."""

    async def insert(self, item: T, *, session: AsyncClientSession) -> None: ...

    async def record_change(
        self,
        item: T,
        *,
        actor: Actor,
        action: str,
        session: AsyncClientSession,
        details: Mapping[str, str] | None = None,
    ) -> None: ...

    async def get(
        self,
        business_id: str,
        mode: Mode,
        item_id: str,
        /,
        *,
        session: AsyncClientSession | None = None,
    ) -> T | None: ...

    async def replace(self, item: T, *, session: AsyncClientSession) -> None: ...

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        item_id: str,
        /,
        *,
        archived: bool,
        at: datetime,
        session: AsyncClientSession,
    ) -> tuple[T, bool] | None: ...


class CatalogueService(Generic[T]):
    """The steps products and add-ons share; each subclass adds its own rules and names."""

    def __init__(
        self,
        store: CatalogueStore[T],
        run_in_transaction: RunInTransaction,
        clock: Clock | None,
        kind: CatalogueKind,
    ) -> None:
        self._store = store
        self._transaction = run_in_transaction
        self._clock = clock or SystemClock()
        self._kind = kind

    async def _insert(self, item: T, *, actor: Actor) -> T:
        """Store a new, already validated item together with its ``created`` audit entry."""

        async def work(session: AsyncClientSession) -> T:
            await self._store.insert(item, session=session)
            await self._store.record_change(
                item, actor=actor, action=self._kind.action("created"), session=session
            )
            return item

        return await self._transaction(work)

    async def _get(self, business_id: str, mode: Mode, item_id: str) -> T:
        """The business's item (archived ones too); otherwise the kind's NotFound."""
        found = await self._store.get(business_id, mode, item_id) if item_id else None
        if found is None:
            raise self._kind.not_found()
        return found

    async def _update(
        self,
        business_id: str,
        mode: Mode,
        item_id: str,
        changes: Mapping[str, Any],
        *,
        actor: Actor,
        rebuild: Callable[[T], Awaitable[T]],
    ) -> T:
        """Check ``changes``, then in one transaction read the item, ``rebuild`` it (the
        subclass validates the whole result), store it and audit the fields changed."""
        self._kind.check_changes(changes)
        if not item_id:
            raise self._kind.not_found()

        async def work(session: AsyncClientSession) -> T:
            current = await self._store.get(business_id, mode, item_id, session=session)
            if current is None:
                raise self._kind.not_found()
            updated = await rebuild(current)
            await self._store.replace(updated, session=session)
            await self._store.record_change(
                updated,
                actor=actor,
                action=self._kind.action("updated"),
                session=session,
                details={"fields": ",".join(sorted(changes))},
            )
            return updated

        return await self._transaction(work)

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        item_id: str,
        *,
        archived: bool,
        actor: Actor = SYSTEM,
    ) -> T:
        """Archive (no longer offered for new purchases) or unarchive; idempotent.

        Only a real change moves ``updated_at`` and is audited.
        """
        if not item_id:
            raise self._kind.not_found()
        at = self._clock.now()

        async def work(session: AsyncClientSession) -> T:
            found = await self._store.set_archived(
                business_id, mode, item_id, archived=archived, at=at, session=session
            )
            if found is None:
                raise self._kind.not_found()
            item, changed = found
            if changed:
                await self._store.record_change(
                    item,
                    actor=actor,
                    action=self._kind.action("archived" if archived else "unarchived"),
                    session=session,
                )
            return item

        return await self._transaction(work)
