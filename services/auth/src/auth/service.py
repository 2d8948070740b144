"""Use cases of the auth service: businesses, API keys, customers.

Pure business logic over :class:`~auth.repository.AuthRepository`; failures
are :mod:`billing_kit.errors` classes, which the gRPC layer turns into status
codes. Secrets are never logged: only key ids and display prefixes.
"""

from __future__ import annotations

import logging
from typing import Any

from billing_kit.clock import Clock, SystemClock
from billing_kit.errors import AlreadyExists, InvalidArgument, NotFound, Reason, Unauthenticated
from billing_kit.events import new_event

from auth.models import (
    API_KEY_PREFIX,
    BUSINESS_PREFIX,
    CUSTOMER_CREATED,
    CUSTOMER_PREFIX,
    ApiKey,
    ApiKeyPrincipal,
    Business,
    Customer,
    CustomerCreatedData,
    CustomerQuery,
    IssuedApiKey,
    NewApiKey,
    NewBusiness,
    NewCustomer,
    PageRequest,
    check_mode,
    display_prefix,
    generate_secret,
    hash_secret,
    new_id,
    normalize_email,
    secret_mode,
    validated,
)
from auth.repository import AuthRepository

log = logging.getLogger(__name__)

# Longer than any secret we issue; anything bigger is not worth hashing.
_MAX_SECRET_LENGTH = 256


class BusinessNotFound(NotFound):
    default_reason = Reason.BUSINESS_NOT_FOUND


class CustomerNotFound(NotFound):
    default_reason = Reason.CUSTOMER_NOT_FOUND


class ApiKeyNotFound(NotFound):
    default_reason = Reason.API_KEY_NOT_FOUND


class InvalidApiKey(Unauthenticated):
    default_reason = Reason.INVALID_API_KEY


class AuthService:
    """The auth use cases; one instance per process."""

    def __init__(
        self, repository: AuthRepository, *, source: str = "auth", clock: Clock | None = None
    ) -> None:
        self.repository = repository
        self.source = source
        self.clock: Clock = clock or SystemClock()

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

    async def list_businesses(
        self, *, page_size: int | None = None, page_number: int | None = None
    ) -> list[Business]:
        """A page of businesses, newest first."""
        page = validated(PageRequest, **_given(page_size=page_size, page_number=page_number))
        return await self.repository.list_businesses(
            limit=page.page_size, skip=page.page_size * page.page_number
        )

    async def _require_business(self, business_id: str) -> None:
        if not await self.repository.business_exists(business_id):
            raise BusinessNotFound(f"business {business_id!r} not found")

    # --- API keys ---

    async def create_api_key(self, *, business_id: str, mode: str, name: str = "") -> IssuedApiKey:
        """Issue a key; the returned secret is the only copy that will ever exist."""
        request = validated(NewApiKey, business_id=business_id, mode=mode, name=name)
        await self._require_business(request.business_id)
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
        await self._require_business(business_id)
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

    # --- customers ---

    async def create_customer(
        self,
        *,
        business_id: str,
        mode: str,
        email: str,
        name: str,
        phone_number: str | None = None,
        metadata: dict[str, str] | None = None,
        preferred_locale: str | None = None,
    ) -> tuple[Customer, bool]:
        """Create a customer; returns ``(customer, created)``.

        Like the Dodo Payments API, creating a customer whose email already
        exists in the business (and mode) returns the existing customer unchanged
        instead of failing or making a duplicate; ``created`` is then False and
        no event is emitted. ``metadata`` (at most 50 keys of 1-40 characters,
        string values up to 500) and ``preferred_locale`` (a Dodo Locale code)
        are optional.
        """
        request = validated(
            NewCustomer,
            business_id=business_id,
            mode=mode,
            email=email,
            name=name,
            phone_number=phone_number,
            metadata=metadata,
            preferred_locale=preferred_locale,
        )
        await self._require_business(request.business_id)
        email_normalized = normalize_email(request.email)
        existing = await self.repository.find_customer_by_email(
            request.business_id, request.mode, email_normalized
        )
        if existing is not None:
            return existing, False
        customer = Customer(
            customer_id=new_id(CUSTOMER_PREFIX), created_at=self.clock.now(), **request.model_dump()
        )
        event = new_event(
            CUSTOMER_CREATED,
            self.source,
            CustomerCreatedData.from_customer(customer),
            subject=customer.customer_id,
        )
        try:
            await self.repository.insert_customer_with_event(customer, event)
        except AlreadyExists:
            # A concurrent create with the same email committed first: answer with its customer.
            winner = await self.repository.find_customer_by_email(
                request.business_id, request.mode, email_normalized
            )
            if winner is None:
                raise
            return winner, False
        log.info(
            "customer created",
            extra={"business_id": customer.business_id, "customer_id": customer.customer_id},
        )
        return customer, True

    async def get_customer(self, *, business_id: str, mode: str, customer_id: str) -> Customer:
        """A customer of this business and mode; anyone else's is simply not found."""
        try:
            checked_mode = check_mode(mode)
        except ValueError as exc:
            raise InvalidArgument(f"mode: {exc}") from None
        customer = (
            await self.repository.get_customer(business_id, checked_mode, customer_id)
            if business_id and customer_id
            else None
        )
        if customer is None:
            raise CustomerNotFound(f"customer {customer_id!r} not found")
        return customer

    async def list_customers(
        self,
        *,
        business_id: str,
        mode: str,
        page_size: int | None = None,
        page_number: int | None = None,
        email: str | None = None,
    ) -> list[Customer]:
        """A page of the business's customers (newest first), optionally by email."""
        query = validated(
            CustomerQuery,
            business_id=business_id,
            mode=mode,
            email=email,
            **_given(page_size=page_size, page_number=page_number),
        )
        return await self.repository.list_customers(
            query.business_id,
            query.mode,
            email_normalized=query.email,
            limit=query.page_size,
            skip=query.page_size * query.page_number,
        )


def _given(**values: Any) -> dict[str, Any]:
    """Only the values that were given, so model defaults apply to the rest."""
    return {k: v for k, v in values.items() if v is not None}
