"""Builds the subscription aggregate's parts and hooks them into the runtime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from billing_kit.runtime import ServiceRuntime
from billing_kit.scoping import Mode

from subscriptions.addons.models import Addon
from subscriptions.addons.service import AddonsService
from subscriptions.checkouts.repository import CheckoutsRepository
from subscriptions.checkouts.service import CHECKOUT_PAYMENT_EVENTS, CheckoutsService
from subscriptions.config import SubscriptionsSettings
from subscriptions.products.models import Product
from subscriptions.products.service import ProductsService
from subscriptions.subscriptions.billing import PAYMENT_EVENTS, BillingService
from subscriptions.subscriptions.pages import METHOD_SAVED_EVENTS, HostedPages
from subscriptions.subscriptions.payments_client import PaymentsClient, PaymentsPort, PayPagesPort
from subscriptions.subscriptions.plan_changes import PlanChangesService
from subscriptions.subscriptions.reminders import (
    AuthReminderDays,
    ReminderDays,
    RenewalReminders,
)
from subscriptions.subscriptions.renewals import RenewalScheduler
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.service import ProductReader, SubscriptionsService
from subscriptions.subscriptions.servicer import SubscriptionsServicer
from subscriptions.subscriptions.test_clock import BusinessClocks
from subscriptions.subscriptions.unit_of_work import UnitOfWork


class Catalogue:
    """What the subscription code reads of the catalogue: products and add-ons, in process."""

    def __init__(self, products: ProductsService, addons: AddonsService) -> None:
        self._products = products
        self._addons = addons

    async def get_product(self, business_id: str, mode: Mode, product_id: str) -> Product:
        """The business's product (archived ones too), else NotFound."""
        return await self._products.get_product(business_id, mode, product_id)

    async def list_plan_group(self, business_id: str, mode: Mode, plan_group: str) -> list[Product]:
        """The business's products of one plan group."""
        return await self._products.list_plan_group(business_id, mode, plan_group)

    async def get_addons(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> Mapping[str, Addon]:
        """The business's add-ons among ``addon_ids`` (one read; unknown ids absent)."""
        return await self._addons.get_addons(business_id, mode, addon_ids)


@dataclass
class SubscriptionsParts:
    """What the runtime (and tests) can reach."""

    repository: SubscriptionsRepository
    clocks: BusinessClocks
    service: SubscriptionsService
    billing: BillingService
    plan_changes: PlanChangesService
    scheduler: RenewalScheduler
    servicer: SubscriptionsServicer
    payments: PaymentsPort
    # None only in unit tests that give a payments fake without hosted pages.
    checkouts: CheckoutsService | None = None
    # auth's GetBusiness, cached (None when tests give their own reminder days).
    business_settings: AuthReminderDays | None = None


def build_subscriptions(
    runtime: ServiceRuntime,
    settings: SubscriptionsSettings,
    products: ProductReader,
    payments: PaymentsPort | None = None,
    pages: PayPagesPort | None = None,
    reminder_days: ReminderDays | None = None,
) -> SubscriptionsParts:
    """Wire the aggregate; the payments channel and the scheduler run with the runtime."""
    repository = SubscriptionsRepository(runtime.db)
    uow = UnitOfWork(runtime.client, runtime.db)
    clocks = BusinessClocks(runtime.db)
    if payments is None:
        client = PaymentsClient(settings.payments_target, timeout=settings.payments_timeout_seconds)
        runtime.add_step("payments-client", client.start, client.stop)
        payments = client
        pages = client
    business_settings: AuthReminderDays | None = None
    if reminder_days is None:
        auth = AuthReminderDays(
            settings.auth_target,
            timeout=settings.auth_timeout_seconds,
            cache_seconds=settings.business_cache_seconds,
        )
        runtime.add_step("auth-client", auth.start, auth.stop)
        reminder_days = business_settings = auth
    scheduler = RenewalScheduler(
        repository,
        uow,
        clocks,
        payments,
        poll_seconds=settings.renewal_poll_seconds,
        lease_seconds=settings.renewal_lease_seconds,
        reminders=RenewalReminders(repository, uow, reminder_days),
    )
    clocks.on_advance = scheduler.wake
    if settings.renewals_enabled:
        runtime.add_step("renewal-scheduler", scheduler.start, scheduler.stop)
    service = SubscriptionsService(repository, uow, clocks, products, payments, pages)
    billing = BillingService(repository, uow, clocks, payments)
    plan_changes = PlanChangesService(repository, uow, clocks, products, payments)
    billing.on_plan_change_payment = plan_changes.on_plan_change_payment
    runtime.add_consumer("payment-outcomes", PAYMENT_EVENTS, billing.on_payment_event)
    checkouts = hosted = None
    if pages is not None:
        hosted = HostedPages(repository, uow, clocks, pages)
        billing.on_unmatched_payment = hosted.on_page_payment
        runtime.add_consumer("saved-methods", METHOD_SAVED_EVENTS, hosted.on_method_saved)
        checkouts = CheckoutsService(
            CheckoutsRepository(runtime.db), repository, uow, clocks, products, pages
        )
        runtime.add_consumer(
            "checkout-payments", CHECKOUT_PAYMENT_EVENTS, checkouts.on_payment_event
        )
    return SubscriptionsParts(
        repository=repository,
        clocks=clocks,
        service=service,
        billing=billing,
        scheduler=scheduler,
        plan_changes=plan_changes,
        servicer=SubscriptionsServicer(
            service, billing, clocks, checkouts, hosted, plan_changes=plan_changes
        ),
        payments=payments,
        checkouts=checkouts,
        business_settings=business_settings,
    )
