"""Builds the license-key aggregate and hooks it into the runtime."""

from __future__ import annotations

from datetime import timedelta

from billing.subscriptions.v1 import licenses_pb2, licenses_pb2_grpc
from billing_kit.mongo import run_in_transaction
from billing_kit.runtime import ServiceRuntime
from billing_kit.sealing import Sealer

from subscriptions.checkouts.repository import CheckoutsRepository
from subscriptions.config import SubscriptionsSettings
from subscriptions.licenses.consumers import (
    LICENSE_PAYMENT_EVENTS,
    LICENSE_SUBSCRIPTION_EVENTS,
    LicenseIssuing,
)
from subscriptions.licenses.rate_limits import LicenseRateLimits, RateLimiter
from subscriptions.licenses.repository import LicensesRepository
from subscriptions.licenses.service import GraceDays, LicensesService
from subscriptions.licenses.servicer import LicensesServicer
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.service import ProductReader
from subscriptions.subscriptions.test_clock import BusinessClocks


def build_licenses(
    runtime: ServiceRuntime,
    settings: SubscriptionsSettings,
    subscriptions: SubscriptionsRepository,
    clocks: BusinessClocks,
    products: ProductReader,
    grace_days: GraceDays | None = None,
) -> LicensesService:
    """Wire the service, its two issuing consumers and LicenseService."""
    client = runtime.client
    service = LicensesService(
        LicensesRepository(runtime.db),
        subscriptions,
        clocks,
        products,
        Sealer(settings.license_key_seal_keys.get_secret_value()),
        runtime.db,
        lambda work: run_in_transaction(client, work),
        grace=timedelta(days=settings.license_grace_days),
        grace_days=grace_days,
        limiter=RateLimiter(
            runtime.db,
            clocks.real,
            LicenseRateLimits(
                window_seconds=settings.license_rate_limit_window_seconds,
                per_client=settings.license_rate_limit_per_client,
                per_key=settings.license_rate_limit_per_key,
            ),
        ),
    )
    issuing = LicenseIssuing(service, CheckoutsRepository(runtime.db), subscriptions)
    runtime.add_consumer("license-payments", LICENSE_PAYMENT_EVENTS, issuing.on_payment_succeeded)
    runtime.add_consumer(
        "license-subscriptions", LICENSE_SUBSCRIPTION_EVENTS, issuing.on_subscription_active
    )
    servicer = LicensesServicer(service)
    runtime.add_grpc_service(
        lambda server: licenses_pb2_grpc.add_LicenseServiceServicer_to_server(servicer, server),
        licenses_pb2.DESCRIPTOR.services_by_name["LicenseService"].full_name,
    )
    return service
