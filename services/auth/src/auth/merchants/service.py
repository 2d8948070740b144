"""Use cases of merchants: businesses and their API keys.

Pure business logic over :class:`~auth.merchants.repository.MerchantRepository`; failures
are :mod:`billing_kit.errors` classes, which the gRPC layer turns into status
codes. Secrets are never logged: only key ids and display prefixes.
"""

from __future__ import annotations

import logging
from typing import Any

from billing_kit.audit import Actor, Resource
from billing_kit.clock import Clock, SystemClock
from billing_kit.errors import InvalidArgument, NotFound, Reason, Unauthenticated

from auth.merchants.business_cache import BusinessCache
from auth.merchants.models import (
    API_KEY_PREFIX,
    BUSINESS_PREFIX,
    PORTAL_SETTING_FIELDS,
    ApiKey,
    ApiKeyPrincipal,
    Business,
    BusinessChanges,
    IssuedApiKey,
    NewApiKey,
    NewBusiness,
    display_prefix,
    generate_secret,
    secret_mode,
)
from auth.merchants.repository import MerchantRepository
from auth.rules import PageRequest, hash_secret, new_id, validated
from auth.unit_of_work import AuditAction, Txn, UnitOfWork

log = logging.getLogger(__name__)

# Longer than any secret we issue; anything bigger is not worth hashing.
_MAX_SECRET_LENGTH = 256
# The operator's command line names itself as the actor of the changes it makes.
OPERATOR_ACTOR = "portalctl"
_MAX_ACTOR_LENGTH = 200


class BusinessNotFound(NotFound):
    default_reason = Reason.BUSINESS_NOT_FOUND


class ApiKeyNotFound(NotFound):
    default_reason = Reason.API_KEY_NOT_FOUND


class InvalidApiKey(Unauthenticated):
    default_reason = Reason.INVALID_API_KEY


class MerchantService:
    """The merchant use cases; one instance per process."""

    def __init__(
        self,
        repository: MerchantRepository,
        *,
        source: str = "auth",
        clock: Clock | None = None,
        uow: UnitOfWork | None = None,
        business_cache: BusinessCache | None = None,
    ) -> None:
        self.repository = repository
        # Dropped after a change commits, so this process never answers the old settings.
        self.business_cache = business_cache
        self.source = source
        self.clock: Clock = clock or SystemClock()
        # Only the audited writes (update_business) need it.
        self.uow = uow

    # --- businesses ---

    async def create_business(self, **fields: Any) -> Business:
        """Create a business from ``name``, ``branding``, ``support_email`` … (validated)."""
        request = validated(NewBusiness, **fields)
        business = Business(
            business_id=new_id(BUSINESS_PREFIX),
            created_at=self.clock.now(),
            **request.model_dump(),
        )
        await self.repository.insert_business(business)
        log.info("business created", extra={"business_id": business.business_id})
        return business

    async def get_business(self, business_id: str) -> Business:
        """One business, or :class:`BusinessNotFound`."""
        business = await self.repository.get_business(business_id) if business_id else None
        if business is None:
            raise BusinessNotFound(f"business {business_id!r} not found")
        return business

    async def update_business(self, business_id: str, *, actor: str, **fields: Any) -> Business:
        """Change the given settings of a business (None = leave it) and audit who did.

        ``fields``: the portal settings (``allow_cancel``, ``allow_pause``,
        ``allow_plan_change``, ``allow_quantity_change``, ``ask_cancel_reason``,
        ``downgrade_timing``), ``renewal_reminder_days`` (1..30) and
        ``license_grace_days`` (0..365). Every value is checked before anything
        is written (:class:`InvalidArgument` naming the first bad field); the
        change and its audit entry commit together; no change, no entry.
        ``actor``: the merchant's API key id, or ``portalctl`` for the operator.
        """
        who = _business_actor(actor)
        changes = validated(BusinessChanges, **given(**fields)).given()
        current = await self.get_business(business_id)
        changed = sorted(k for k, v in changes.items() if _current_value(current, k) != v)
        if not changed:
            return current
        if self.uow is None:  # pragma: no cover - wiring error, not a request error
            raise RuntimeError("MerchantService.update_business needs a unit of work")
        uow = self.uow
        now = self.clock.now()

        async def write(txn: Txn) -> Business | None:
            updated = await self.repository.update_business(
                business_id, {k: changes[k] for k in changed}, txn=txn
            )
            if updated is None:
                return None
            await uow.audit(
                txn,
                actor=who,
                action=AuditAction.BUSINESS_UPDATED.value,
                resource=Resource(kind="business", id=business_id, business_id=business_id),
                at=now,
                details={"changed_fields": ",".join(changed)},
            )
            return updated

        updated = await uow.run(write)
        if self.business_cache is not None:
            self.business_cache.drop(business_id)
        if updated is None:
            raise BusinessNotFound(f"business {business_id!r} not found")
        log.info(
            "business updated",
            extra={"business_id": business_id, "changed": ",".join(changed), "by": who.kind},
        )
        return updated

    async def list_businesses(
        self, *, page_size: int | None = None, page_number: int | None = None
    ) -> list[Business]:
        """A page of businesses, newest first."""
        page = validated(PageRequest, **given(page_size=page_size, page_number=page_number))
        return await self.repository.list_businesses(
            limit=page.page_size, skip=page.page_size * page.page_number
        )

    async def require_business(self, business_id: str) -> None:
        """Nothing, or :class:`BusinessNotFound` (a projected read)."""
        if not await self.repository.business_exists(business_id):
            raise BusinessNotFound(f"business {business_id!r} not found")

    # --- API keys ---

    async def create_api_key(self, *, business_id: str, mode: str, name: str = "") -> IssuedApiKey:
        """Issue a key; the returned secret is the only copy that will ever exist."""
        request = validated(NewApiKey, business_id=business_id, mode=mode, name=name)
        await self.require_business(request.business_id)
        secret = generate_secret(request.mode)
        api_key = ApiKey(
            key_id=new_id(API_KEY_PREFIX),
            business_id=request.business_id,
            mode=request.mode,
            name=request.name,
            display_prefix=display_prefix(secret),
            created_at=self.clock.now(),
        )
        await self.repository.insert_api_key(api_key, hash_secret(secret))
        log.info(
            "api key issued",
            extra={
                "business_id": api_key.business_id,
                "key_id": api_key.key_id,
                "mode": api_key.mode,
            },
        )
        return IssuedApiKey(api_key=api_key, secret=secret)

    async def list_api_keys(self, business_id: str) -> list[ApiKey]:
        """A business's keys (never their secrets), newest first."""
        await self.require_business(business_id)
        return await self.repository.list_api_keys(business_id)

    async def revoke_api_key(self, *, business_id: str, key_id: str) -> ApiKey:
        """Revoke a key of this business; revoking twice keeps the first revocation time."""
        api_key = await self.repository.revoke_api_key(business_id, key_id, self.clock.now())
        if api_key is None:
            raise ApiKeyNotFound(f"API key {key_id!r} not found for business {business_id!r}")
        log.info("api key revoked", extra={"business_id": business_id, "key_id": key_id})
        return api_key

    async def authenticate_api_key(self, secret: str) -> ApiKeyPrincipal:
        """Who a secret speaks for; unknown, malformed or revoked -> :class:`InvalidApiKey`.

        The message is the same in every case so a caller learns nothing about
        which keys exist.
        """
        failure = InvalidApiKey("invalid or revoked API key")
        if not secret or len(secret) > _MAX_SECRET_LENGTH or secret_mode(secret) is None:
            raise failure
        api_key = await self.repository.find_api_key_by_hash(hash_secret(secret))
        if api_key is None or api_key.revoked_at is not None:
            raise failure
        return ApiKeyPrincipal(
            business_id=api_key.business_id, mode=api_key.mode, key_id=api_key.key_id
        )


def _business_actor(actor: str) -> Actor:
    """Who changes a business: a merchant's API key, or the operator's command line."""
    if actor == OPERATOR_ACTOR:
        return Actor(kind="operator", id=OPERATOR_ACTOR)
    if actor.startswith(API_KEY_PREFIX) and len(actor) <= _MAX_ACTOR_LENGTH:
        return Actor(kind="merchant", id=actor)
    raise InvalidArgument(f"actor: must be an API key id or {OPERATOR_ACTOR!r}", field="actor")


def _current_value(business: Business, field: str) -> Any:
    if field in PORTAL_SETTING_FIELDS:
        return getattr(business.portal_settings, field)
    return getattr(business, field)


def given(**values: Any) -> dict[str, Any]:
    """Only the values that were given, so model defaults apply to the rest."""
    return {k: v for k, v in values.items() if v is not None}
