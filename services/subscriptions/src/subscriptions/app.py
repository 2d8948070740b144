"""Wiring: the subscriptions service as a kit ServiceRuntime."""

from __future__ import annotations

from billing.subscriptions.v1 import (
    addons_pb2,
    addons_pb2_grpc,
    products_pb2,
    products_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from billing_kit.mongo import run_in_transaction
from billing_kit.runtime import ServiceRuntime

from subscriptions.addons import repository as addons_repository
from subscriptions.addons.service import AddonsService
from subscriptions.addons.servicer import AddonsServicer
from subscriptions.checkouts.repository import CHECKOUT_INDEXES
from subscriptions.config import SubscriptionsSettings
from subscriptions.licenses import rate_limits as license_rate_limits
from subscriptions.licenses import repository as licenses_repository
from subscriptions.licenses.service import LicensesService
from subscriptions.licenses.wiring import build_licenses
from subscriptions.products import repository as products_repository
from subscriptions.products.service import ProductsService
from subscriptions.products.servicer import ProductsServicer
from subscriptions.subscriptions.repository import INDEXES as SUBSCRIPTIONS_INDEXES
from subscriptions.subscriptions.wiring import Catalogue, SubscriptionsParts, build_subscriptions

SERVICE_NAME = "subscriptions"


def create_app(settings: SubscriptionsSettings) -> SubscriptionsRuntime:
    """Build the runtime; ``await runtime.start()`` brings it up."""
    runtime = SubscriptionsRuntime(
        settings,
        name=SERVICE_NAME,
        indexes={
            **SUBSCRIPTIONS_INDEXES,
            **products_repository.INDEXES,
            **addons_repository.INDEXES,
            **CHECKOUT_INDEXES,
            **licenses_repository.INDEXES,
            **license_rate_limits.INDEXES,
        },
        outbox=True,
    )
    client = runtime.client
    runtime.addons = AddonsService(
        addons_repository.AddonsRepository(runtime.db),
        lambda work: run_in_transaction(client, work),
    )
    addons_servicer = AddonsServicer(runtime.addons)
    runtime.add_grpc_service(
        lambda server: addons_pb2_grpc.add_AddonsServiceServicer_to_server(addons_servicer, server),
        addons_pb2.DESCRIPTOR.services_by_name["AddonsService"].full_name,
    )
    runtime.products = ProductsService(
        products_repository.ProductsRepository(runtime.db),
        lambda work: run_in_transaction(client, work),
        addons=runtime.addons.get_addons,
    )
    catalogue = Catalogue(runtime.products, runtime.addons)
    runtime.subscriptions = build_subscriptions(runtime, settings, catalogue)
    servicer = runtime.subscriptions.servicer
    runtime.add_grpc_service(
        lambda server: subscriptions_pb2_grpc.add_SubscriptionsServiceServicer_to_server(
            servicer, server
        ),
        subscriptions_pb2.DESCRIPTOR.services_by_name["SubscriptionsService"].full_name,
    )
    products_servicer = ProductsServicer(runtime.products)
    runtime.add_grpc_service(
        lambda server: products_pb2_grpc.add_ProductsServiceServicer_to_server(
            products_servicer, server
        ),
        products_pb2.DESCRIPTOR.services_by_name["ProductsService"].full_name,
    )
    runtime.licenses = build_licenses(
        runtime,
        settings,
        runtime.subscriptions.repository,
        runtime.subscriptions.clocks,
        catalogue,
        grace_days=runtime.subscriptions.business_settings,
    )
    return runtime


class SubscriptionsRuntime(ServiceRuntime):
    """The kit runtime plus the repository, so tests and later wiring can reach it."""

    # The subscription aggregate: repository, use cases, scheduler, payments client.
    subscriptions: SubscriptionsParts
    # The product catalogue's use cases: also the in-process API of the subscriptions code.
    products: ProductsService
    # Add-ons: per-unit extras offered with subscription products.
    addons: AddonsService
    # License keys: issued on first purchases, activated by the software bought.
    licenses: LicensesService

    async def stop(self) -> None:
        """Stop the renewal scheduler first: its steps were added before the kit's, so the
        kit would otherwise close the database under a pass still running."""
        await self.subscriptions.scheduler.stop()
        await super().stop()
