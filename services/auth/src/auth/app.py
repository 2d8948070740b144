"""Wiring of the auth service: repositories, use cases and gRPC servicers on the kit runtime."""

from __future__ import annotations

import grpc
from billing.auth.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    portal_access_pb2,
    portal_access_pb2_grpc,
)
from billing_kit.audit import AUDIT_INDEXES
from billing_kit.clock import TestClock, clock_for
from billing_kit.clock_service import SERVICE_FULL_NAME as TEST_CLOCK_SERVICE
from billing_kit.clock_service import clock_service_registration
from billing_kit.grpc_client import create_channel
from billing_kit.runtime import ServiceRuntime
from billing_kit.sealing import Sealer
from pymongo import IndexModel

from auth.config import AuthSettings
from auth.customers.email_change import EmailChanges
from auth.customers.repository import CUSTOMER_INDEXES, CustomerRepository
from auth.customers.service import CustomerService
from auth.email_client import GrpcEmailOutcomes
from auth.merchants.business_cache import BusinessCache
from auth.merchants.repository import MERCHANT_INDEXES, MerchantRepository
from auth.merchants.service import MerchantService
from auth.portal_access.handoff import Handoff
from auth.portal_access.links import SignInLinks
from auth.portal_access.models import BaseUrls
from auth.portal_access.repository import PORTAL_INDEXES, PortalRepository
from auth.portal_access.servicer import PortalAccessServicer
from auth.portal_access.use_case import PortalDependencies, PortalPolicy
from auth.servicer import AuthServicer
from auth.unit_of_work import UnitOfWork

SERVICE_NAME = "auth"


class AuthRuntime(ServiceRuntime):
    """The kit runtime plus the channel to notifications (email outcomes)."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        indexes: dict[str, list[IndexModel]],
        notifications: grpc.aio.Channel,
    ) -> None:
        super().__init__(settings, name=SERVICE_NAME, indexes=indexes, outbox=True)
        self.notifications = notifications

    async def _stop_grpc(self) -> None:
        await super()._stop_grpc()
        await self.notifications.close()


def policy_from(settings: AuthSettings) -> PortalPolicy:
    """The portal-access rules as configured."""
    return PortalPolicy(
        base_urls=BaseUrls(
            live=settings.portal_live_base_url,
            test=settings.portal_test_base_url,
            unified=settings.unified_base_url,
        ),
        sign_in_link_ttl_seconds=settings.sign_in_link_ttl_seconds,
        magic_link_ttl_seconds=settings.magic_link_ttl_seconds,
        email_change_link_ttl_seconds=settings.email_change_link_ttl_seconds,
        session_idle_seconds=settings.session_idle_seconds,
        session_absolute_seconds=settings.session_absolute_seconds,
        session_touch_seconds=settings.session_touch_seconds,
        rate_limit_window_seconds=settings.rate_limit_window_seconds,
        rate_limit_per_email=settings.rate_limit_per_email,
        rate_limit_per_client=settings.rate_limit_per_client,
        handoff_ttl_seconds=settings.handoff_ttl_seconds,
        email_outcome_wait_seconds=settings.email_outcome_wait_seconds,
    )


def _all_indexes() -> dict[str, list[IndexModel]]:
    merged: dict[str, list[IndexModel]] = {}
    for indexes in (MERCHANT_INDEXES, CUSTOMER_INDEXES, PORTAL_INDEXES, AUDIT_INDEXES):
        for collection, models in indexes.items():
            merged.setdefault(collection, []).extend(models)
    return merged


def create_app(settings: AuthSettings) -> AuthRuntime:
    """Build (not start) the auth runtime: ``await runtime.start()`` serves it."""
    # One channel per process; gRPC connects lazily, so building it never blocks.
    notifications = create_channel(
        settings.notifications_target,
        name="notifications",
        timeout=settings.notifications_timeout_seconds,
    )
    runtime = AuthRuntime(settings, indexes=_all_indexes(), notifications=notifications)
    uow = UnitOfWork(runtime.client, runtime.db)
    merchant_store = MerchantRepository(runtime.db)
    customer_store = CustomerRepository(runtime.db)
    # A movable clock only when enabled, which AuthSettings refuses in production.
    clock = clock_for(test_clock_enabled=settings.test_clock_enabled)
    # One copy of businesses per process, shared by the unified portal's reads and
    # dropped by this process's UpdateBusiness.
    business_cache = BusinessCache(merchant_store, ttl_seconds=settings.business_cache_seconds)
    merchants = MerchantService(
        merchant_store, source=SERVICE_NAME, clock=clock, uow=uow, business_cache=business_cache
    )
    customers = CustomerService(customer_store, merchants, uow, source=SERVICE_NAME, clock=clock)
    servicer = AuthServicer(merchants, customers)
    runtime.add_grpc_service(
        lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server),
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
    )

    # The portal-access use cases share one set of dependencies.
    portal_deps = PortalDependencies(
        merchants=merchant_store,
        businesses=business_cache,
        customers=customer_store,
        portal=PortalRepository(runtime.db),
        uow=uow,
        policy=policy_from(settings),
        sealer=Sealer(settings.email_link_keys.get_secret_value()),
        outcomes=GrpcEmailOutcomes(notifications, timeout=settings.notifications_timeout_seconds),
        clock=clock,
        source=SERVICE_NAME,
    )
    portal_servicer = PortalAccessServicer(
        links=SignInLinks(**portal_deps),
        sessions=Handoff(**portal_deps),
        profiles=EmailChanges(**portal_deps),
    )
    runtime.add_grpc_service(
        lambda server: portal_access_pb2_grpc.add_PortalAccessServiceServicer_to_server(
            portal_servicer, server
        ),
        portal_access_pb2.DESCRIPTOR.services_by_name["PortalAccessService"].full_name,
    )
    if isinstance(clock, TestClock):
        runtime.add_grpc_service(clock_service_registration(clock), TEST_CLOCK_SERVICE)
    return runtime
