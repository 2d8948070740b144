"""gRPC adapter of billing.subscriptions.v1.SubscriptionsService: proto <-> use cases.

Domain errors become statuses in the kit's interceptor; conversions of
messages are in :mod:`.convert`.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.subscriptions.v1 import subscriptions_pb2 as pb
from billing.subscriptions.v1 import subscriptions_pb2_grpc
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.scoping import list_business, make_page, mode_from_proto

from subscriptions.checkouts.models import Checkout
from subscriptions.checkouts.service import CheckoutsService, NewCheckout
from subscriptions.subscriptions import convert as c
from subscriptions.subscriptions.billing import BillingService, MethodResult
from subscriptions.subscriptions.changes import Changes
from subscriptions.subscriptions.models import CancelledBy
from subscriptions.subscriptions.pages import HostedPages
from subscriptions.subscriptions.plan_changes import PlanChangesService
from subscriptions.subscriptions.repository import SubscriptionFilter
from subscriptions.subscriptions.service import NewSubscription, SubscriptionsService
from subscriptions.subscriptions.test_clock import BusinessClocks

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _business(business_id: str) -> str:
    if not business_id or len(business_id) > 128:
        raise InvalidArgument(
            "business_id is required", reason=Reason.INVALID_SCOPE, field="business_id"
        )
    return business_id


class SubscriptionsServicer(subscriptions_pb2_grpc.SubscriptionsServiceServicer):
    """Implements billing.subscriptions.v1.SubscriptionsService."""

    def __init__(
        self,
        service: SubscriptionsService,
        billing: BillingService,
        clocks: BusinessClocks,
        checkouts: CheckoutsService | None = None,
        hosted: HostedPages | None = None,
        *,
        plan_changes: PlanChangesService | None = None,
    ) -> None:
        self._service = service
        self._billing = billing
        self._clocks = clocks
        self._checkouts = checkouts
        self._hosted = hosted
        self._plan_changes = plan_changes

    async def CreateSubscription(
        self, request: pb.CreateSubscriptionRequest, context: Context
    ) -> pb.CreateSubscriptionResponse:
        """Create (and, with a payment method, charge the first period)."""
        if not request.customer_id:
            raise InvalidArgument(
                "customer_id is required", reason=Reason.INVALID_SCOPE, field="customer_id"
            )
        if not request.product_id:
            raise InvalidArgument(
                "product_id is required",
                reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
                field="product_id",
            )
        new = NewSubscription(
            business_id=_business(request.business_id),
            mode=mode_from_proto(request.mode),
            customer_id=request.customer_id,
            product_id=request.product_id,
            quantity=request.quantity,
            billing=c.billing_from_proto(request.billing) if request.HasField("billing") else None,
            metadata=dict(request.metadata),
            payment_method_id=request.payment_method_id or None,
            trial_period_days=(
                request.trial_period_days if request.HasField("trial_period_days") else None
            ),
            return_url=request.return_url,
            idempotency_key=request.idempotency_key,
            customer_present=request.customer_present,
            tax_id=request.tax_id,
            addons=tuple((a.addon_id, a.quantity) for a in request.addons),
        )
        if request.payment_link:
            sub, link = await self._service.create_with_payment_link(new)
            return pb.CreateSubscriptionResponse(
                subscription=c.subscription_to_proto(sub), payment_link=link
            )
        sub, payment = await self._service.create_subscription(new)
        response = pb.CreateSubscriptionResponse(subscription=c.subscription_to_proto(sub))
        if payment is not None:
            response.first_payment.CopyFrom(c.outcome_to_proto(payment))
        return response

    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        """One subscription of the business (and of the customer, when given)."""
        found = await self._service.get_subscription(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.subscription_id,
            request.customer_id or None,
        )
        return c.subscription_to_proto(found)

    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: Context
    ) -> pb.ListSubscriptionsResponse:
        """A page, newest first, filtered."""
        customers = tuple(
            dict.fromkeys(
                [*request.customer_ids, *([request.customer_id] if request.customer_id else [])]
            )
        )
        query = SubscriptionFilter(
            business_id=list_business(request.business_id, request.customer_ids),
            mode=mode_from_proto(request.mode),
            customer_ids=customers,
            status=c.status_from_proto(request.status),
            product_id=request.product_id or None,
            created_at_gte=(
                c.from_timestamp(request.created_at_gte)
                if request.HasField("created_at_gte")
                else None
            ),
            created_at_lte=(
                c.from_timestamp(request.created_at_lte)
                if request.HasField("created_at_lte")
                else None
            ),
            cancel_at_next_billing_date=(
                request.cancel_at_next_billing_date
                if request.HasField("cancel_at_next_billing_date")
                else None
            ),
        )
        found = await self._service.list_subscriptions(
            query, make_page(request.page_size, request.page_number)
        )
        return pb.ListSubscriptionsResponse(
            subscriptions=[c.subscription_to_proto(s) for s in found]
        )

    async def UpdateSubscription(
        self, request: pb.UpdateSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        """PATCH: cancel now / at period end / undo, metadata, billing, next billing date,
        pause / resume (alone)."""
        changes = Changes(
            cancel_at_next_billing_date=(
                request.cancel_at_next_billing_date
                if request.HasField("cancel_at_next_billing_date")
                else None
            ),
            cancel_now=request.cancel_now,
            cancellation_feedback=c.feedback_from_proto(request.cancellation_feedback),
            cancellation_comment=(
                request.cancellation_comment if request.HasField("cancellation_comment") else None
            ),
            metadata=dict(request.metadata.values) if request.HasField("metadata") else None,
            billing=c.billing_from_proto(request.billing) if request.HasField("billing") else None,
            next_billing_date=(
                c.from_timestamp(request.next_billing_date)
                if request.HasField("next_billing_date")
                else None
            ),
            cancelled_by=CancelledBy.CUSTOMER if request.customer_id else CancelledBy.MERCHANT,
            pause=request.pause,
            resume=request.resume,
        )
        updated = await self._service.update_subscription(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.subscription_id,
            changes,
            customer_id=request.customer_id or None,
        )
        return c.subscription_to_proto(updated)

    async def CancelSubscription(
        self, request: pb.CancelSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        """Cancel now, or at the end of the period."""
        changes = Changes(
            cancel_now=not request.at_period_end,
            cancel_at_next_billing_date=True if request.at_period_end else None,
            cancellation_feedback=c.feedback_from_proto(request.cancellation_feedback),
            cancellation_comment=request.cancellation_comment or None,
            cancelled_by=CancelledBy.CUSTOMER if request.customer_id else CancelledBy.MERCHANT,
        )
        updated = await self._service.update_subscription(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.subscription_id,
            changes,
            customer_id=request.customer_id or None,
        )
        return c.subscription_to_proto(updated)

    async def PreviewDues(self, request: pb.PreviewDuesRequest, context: Context) -> pb.Dues:
        """What an on_hold subscription owes now."""
        dues = await self._billing.preview_dues(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.subscription_id,
            request.customer_id or None,
        )
        return c.dues_to_proto(dues)

    async def UpdatePaymentMethod(
        self, request: pb.UpdatePaymentMethodRequest, context: Context
    ) -> pb.UpdatePaymentMethodResponse:
        """Switch the method, or (on hold) pay the dues with it (or with a new card)."""
        if request.new_method:
            if self._hosted is None:  # pragma: no cover - the runtime always wires pages
                raise InvalidArgument("type new is not available", field="type")
            sub, link = await self._hosted.new_method_page(
                _business(request.business_id),
                mode_from_proto(request.mode),
                request.subscription_id,
                request.return_url,
                customer_id=request.customer_id or None,
            )
            return pb.UpdatePaymentMethodResponse(
                result=pb.UpdatePaymentMethodResponse.RESULT_CHARGED,
                subscription=c.subscription_to_proto(sub),
                payment_link=link,
            )
        outcome = await self._billing.update_payment_method(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.subscription_id,
            request.payment_method_id,
            customer_id=request.customer_id or None,
            customer_present=request.customer_present,
            return_url=request.return_url,
        )
        response = pb.UpdatePaymentMethodResponse(
            result=(
                pb.UpdatePaymentMethodResponse.RESULT_CHARGED
                if outcome.result is MethodResult.CHARGED
                else pb.UpdatePaymentMethodResponse.RESULT_SWITCHED
            ),
            subscription=c.subscription_to_proto(outcome.subscription),
        )
        if outcome.payment is not None:
            response.payment.CopyFrom(c.outcome_to_proto(outcome.payment))
        return response

    async def ChargeSubscription(
        self, request: pb.ChargeSubscriptionRequest, context: Context
    ) -> pb.ChargeSubscriptionResponse:
        """An on-demand charge of the subscription's method."""
        result = await self._billing.charge_on_demand(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.subscription_id,
            request.product_price,
            currency=request.product_currency,
            description=request.product_description,
            idempotency_key=request.idempotency_key,
        )
        return pb.ChargeSubscriptionResponse(payment=c.outcome_to_proto(result))

    def _plans(self) -> PlanChangesService:
        if self._plan_changes is None:  # pragma: no cover - the runtime always wires it
            raise InvalidArgument("plan changes are not available", field="product_id")
        return self._plan_changes

    async def PreviewChangePlan(
        self, request: pb.ChangePlanRequest, context: Context
    ) -> pb.PlanChangePreview:
        """What a change would charge now and the subscription after it (writes nothing)."""
        _business(request.business_id)
        preview = await self._plans().preview(c.plan_change_request(request))
        return c.preview_to_proto(preview)

    async def ChangePlan(
        self, request: pb.ChangePlanRequest, context: Context
    ) -> pb.ChangePlanResponse:
        """Change (or schedule) the plan, charging what the preview computes."""
        _business(request.business_id)
        outcome = await self._plans().change(c.plan_change_request(request))
        response = pb.ChangePlanResponse(
            subscription=c.subscription_to_proto(outcome.subscription),
            applied=c.preview_to_proto(outcome.applied),
        )
        if outcome.payment is not None:
            response.payment.CopyFrom(c.outcome_to_proto(outcome.payment))
        return response

    async def CancelScheduledChange(
        self, request: pb.CancelScheduledChangeRequest, context: Context
    ) -> pb.Subscription:
        """Drop the scheduled plan change (FAILED_PRECONDITION when none)."""
        updated = await self._plans().cancel_scheduled(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.subscription_id,
            request.customer_id or None,
        )
        return c.subscription_to_proto(updated)

    async def ListPlanOptions(
        self, request: pb.ListPlanOptionsRequest, context: Context
    ) -> pb.ListPlanOptionsResponse:
        """The plans of the subscription's plan group, cheapest first."""
        options = await self._plans().plan_options(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.subscription_id,
            request.customer_id or None,
        )
        return pb.ListPlanOptionsResponse(options=[c.plan_option_to_proto(o) for o in options])

    async def AdvanceTestClock(
        self, request: pb.AdvanceTestClockRequest, context: Context
    ) -> pb.TestClock:
        """Move the business's test clock forward (test mode only)."""
        reading = await self._clocks.advance(
            _business(request.business_id),
            mode_from_proto(request.mode),
            seconds=request.seconds,
            to=c.from_timestamp(request.to) if request.HasField("to") else None,
        )
        return c.clock_to_proto(reading)

    async def GetTestClock(self, request: pb.GetTestClockRequest, context: Context) -> pb.TestClock:
        """The business's clock (real time in live mode)."""
        reading = await self._clocks.read(
            _business(request.business_id), mode_from_proto(request.mode)
        )
        return c.clock_to_proto(reading)

    async def CreateCheckout(
        self, request: pb.CreateCheckoutRequest, context: Context
    ) -> pb.Checkout:
        """Price the cart and open the hosted page that takes its payment."""
        if not request.customer_id and not request.validate_only:
            raise InvalidArgument(
                "customer_id is required", reason=Reason.INVALID_SCOPE, field="customer_id"
            )
        new = NewCheckout(
            business_id=_business(request.business_id),
            mode=mode_from_proto(request.mode),
            customer_id=request.customer_id,
            cart=[(item.product_id, item.quantity) for item in request.product_cart],
            return_url=request.return_url,
            billing=c.billing_from_proto(request.billing) if request.HasField("billing") else None,
            metadata=dict(request.metadata),
            customer_email=request.customer_email,
            customer_name=request.customer_name,
            tax_id=request.tax_id,
        )
        if request.validate_only:
            _, total, currency = await self._checkouts_service().price_cart(new)
            return pb.Checkout(total_amount=total, currency=currency)
        checkout = await self._checkouts_service().create_checkout(new)
        return _checkout_to_proto(checkout)

    async def GetCheckout(self, request: pb.GetCheckoutRequest, context: Context) -> pb.Checkout:
        """One checkout session of the business and its payment's outcome."""
        checkout = await self._checkouts_service().get_checkout(
            _business(request.business_id), mode_from_proto(request.mode), request.session_id
        )
        return _checkout_to_proto(checkout)

    def _checkouts_service(self) -> CheckoutsService:
        if self._checkouts is None:  # pragma: no cover - the runtime always wires it
            raise InvalidArgument("checkout sessions are not available", field="product_cart")
        return self._checkouts


def _checkout_to_proto(checkout: Checkout) -> pb.Checkout:
    message = pb.Checkout(
        session_id=checkout.session_id,
        checkout_url=checkout.checkout_url,
        customer_id=checkout.customer_id,
        customer_email=checkout.customer_email,
        customer_name=checkout.customer_name,
        payment_id=checkout.payment_id,
        payment_status=checkout.payment_status,
        subscription_ids=checkout.subscription_ids,
        total_amount=checkout.total_amount,
        currency=checkout.currency,
    )
    message.created_at.FromDatetime(checkout.created_at)
    return message
