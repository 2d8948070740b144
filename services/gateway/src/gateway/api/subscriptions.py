"""Merchant API: subscriptions (Dodo's ``/subscriptions``) and the test clock.

Every call is scoped to the API key's business and mode; another business's
subscription (or customer) is "not found", like a missing one. An illegal
state change is the subscriptions service's FAILED_PRECONDITION: 409 with
``x-should-retry: false`` (problems.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC

from aiohttp import web
from billing.auth.v1 import auth_pb2
from billing.subscriptions.v1 import subscriptions_pb2 as pb
from billing_kit.errors import InvalidArgument, NotFound, PermissionDenied, Reason

from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_json_body, parse_query
from gateway.api.schemas import dump
from gateway.api.subscription_schemas import (
    FEEDBACK_VALUES,
    PRORATION_VALUES,
    STATUS_VALUES,
    AddonCartOut,
    AdvanceClockBody,
    ChangePlanBody,
    ChargeBody,
    ClockOut,
    CreateSubscriptionBody,
    CreateSubscriptionOut,
    CustomerLimitedOut,
    ExistingCustomerIn,
    ListSubscriptionsQuery,
    NewCustomerIn,
    PaymentLinkOut,
    PreviewChangePlanOut,
    RetrieveQuery,
    SubscriptionListOut,
    SubscriptionOut,
    UpdatePaymentMethodBody,
    UpdateSubscriptionBody,
)
from gateway.api_keys import Merchant
from gateway.keys import AUTH_STUB, SUBSCRIPTIONS_STUB
from gateway.problems import ApiProblem, resource_not_found

IDEMPOTENCY_HEADER = "Idempotency-Key"


async def _customer(
    request: web.Request, merchant: Merchant, customer_id: str
) -> CustomerLimitedOut:
    try:
        customer = await request.app[AUTH_STUB].GetCustomer(
            auth_pb2.GetCustomerRequest(
                business_id=merchant.business_id, mode=merchant.proto_mode, customer_id=customer_id
            )
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Customer") from None
    return CustomerLimitedOut(
        customer_id=customer.customer_id, email=customer.email, name=customer.name
    )


async def resolve_customer(
    request: web.Request, merchant: Merchant, given: ExistingCustomerIn | NewCustomerIn
) -> CustomerLimitedOut:
    """The merchant's existing customer, or one auth creates (or finds) by email."""
    if isinstance(given, ExistingCustomerIn):
        return await _customer(request, merchant, given.customer_id)
    created = await request.app[AUTH_STUB].CreateCustomer(
        auth_pb2.CreateCustomerRequest(
            business_id=merchant.business_id,
            mode=merchant.proto_mode,
            email=str(given.email),
            name=given.name or str(given.email).split("@")[0],
            phone_number=given.phone_number or "",
        )
    )
    c = created.customer
    return CustomerLimitedOut(customer_id=c.customer_id, email=c.email, name=c.name)


async def _render(
    request: web.Request,
    merchant: Merchant,
    subs: list[pb.Subscription],
    known: Mapping[str, CustomerLimitedOut] | None = None,
) -> list[SubscriptionOut]:
    """Subscriptions in Dodo's shape, each with its customer.

    Each distinct customer is asked for once and all of them at the same time: a
    page of many customers costs one round trip to auth, not one per customer.
    """
    customers = dict(known or {})
    wanted = list(dict.fromkeys(s.customer_id for s in subs if s.customer_id not in customers))
    found = await asyncio.gather(*(_customer(request, merchant, c) for c in wanted))
    customers.update(zip(wanted, found, strict=True))
    return [SubscriptionOut.from_proto(sub, customers[sub.customer_id]) for sub in subs]


@merchant_api
async def create_subscription(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /subscriptions``: with ``payment_method_id`` the first period is charged now."""
    body = await parse_json_body(request, CreateSubscriptionBody)
    customer = await resolve_customer(request, merchant, body.customer)
    message = pb.CreateSubscriptionRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        customer_id=customer.customer_id,
        product_id=body.product_id,
        quantity=body.quantity,
        billing=body.billing.to_proto(),
        metadata=body.metadata or {},
        payment_method_id=body.payment_method_id or "",
        return_url=body.return_url or "",
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        payment_link=bool(body.payment_link),
        tax_id=body.tax_id or "",
        addons=[addon.to_proto() for addon in body.addons or []],
    )
    if body.trial_period_days is not None:
        message.trial_period_days = body.trial_period_days
    reply = await request.app[SUBSCRIPTIONS_STUB].CreateSubscription(message)
    sub, payment = reply.subscription, reply.first_payment
    out = CreateSubscriptionOut(
        subscription_id=sub.subscription_id,
        payment_id=payment.payment_id,
        customer=customer,
        metadata=dict(sub.metadata),
        recurring_pre_tax_amount=sub.recurring_pre_tax_amount,
        addons=[AddonCartOut(addon_id=a.addon_id, quantity=a.quantity) for a in sub.addons],
        payment_link=reply.payment_link or payment.challenge_url or None,
    )
    return web.json_response(dump(out))


@merchant_api
async def retrieve_subscription(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /subscriptions/{id}``."""
    parse_query(request, RetrieveQuery)
    sub = await _get(request, merchant)
    [out] = await _render(request, merchant, [sub])
    return web.json_response(dump(out))


async def _get(request: web.Request, merchant: Merchant) -> pb.Subscription:
    try:
        sub: pb.Subscription = await request.app[SUBSCRIPTIONS_STUB].GetSubscription(
            pb.GetSubscriptionRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                subscription_id=request.match_info["id"],
            )
        )
    except (NotFound, InvalidArgument):
        raise resource_not_found("Subscription") from None
    return sub


@merchant_api
async def list_subscriptions(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /subscriptions``: one page, newest first, filtered."""
    query = parse_query(request, ListSubscriptionsQuery)
    if query.brand_id and query.brand_id != merchant.business_id:
        return web.json_response(dump(SubscriptionListOut(items=[])))
    message = pb.ListSubscriptionsRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        page_size=query.page_size,
        page_number=query.page_index,
        product_id=query.product_id or "",
    )
    if query.customer_id:
        message.customer_ids.append(query.customer_id)
    if query.status:
        message.status = STATUS_VALUES[query.status]
    if query.cancel_at_next_billing_date is not None:
        message.cancel_at_next_billing_date = query.cancel_at_next_billing_date
    if query.created_at_gte is not None:
        message.created_at_gte.FromDatetime(query.created_at_gte)
    if query.created_at_lte is not None:
        message.created_at_lte.FromDatetime(query.created_at_lte)
    if not query.customer_id:
        reply = await request.app[SUBSCRIPTIONS_STUB].ListSubscriptions(message)
        items = await _render(request, merchant, list(reply.subscriptions))
        return web.json_response(dump(SubscriptionListOut(items=items)))
    # One customer's list: its customer is asked for beside the list (one round trip
    # of latency, not two). Its answer counts only when the list has rows, so an
    # unknown customer still lists as empty, as before.
    reply, customer = await asyncio.gather(
        request.app[SUBSCRIPTIONS_STUB].ListSubscriptions(message),
        _customer(request, merchant, query.customer_id),
        return_exceptions=True,
    )
    if isinstance(reply, BaseException):
        raise reply
    subs = list(reply.subscriptions)
    if subs and isinstance(customer, BaseException):
        raise customer
    known = {query.customer_id: customer} if isinstance(customer, CustomerLimitedOut) else {}
    items = await _render(request, merchant, subs, known)
    return web.json_response(dump(SubscriptionListOut(items=items)))


@merchant_api
async def update_subscription(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /subscriptions/{id}``: cancel now / at period end / undo, metadata, billing;
    ``status: "paused"`` pauses, ``status: "active"`` resumes (alone in the body)."""
    body = await parse_json_body(request, UpdateSubscriptionBody)
    sent = body.model_fields_set
    message = pb.UpdateSubscriptionRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        subscription_id=request.match_info["id"],
        cancel_now=body.status == "cancelled",
        pause=body.status == "paused",
        resume=body.status == "active",
    )
    if body.cancel_at_next_billing_date is not None:
        message.cancel_at_next_billing_date = body.cancel_at_next_billing_date
    if body.cancellation_feedback is not None:
        message.cancellation_feedback = FEEDBACK_VALUES[body.cancellation_feedback]
    if body.cancellation_comment is not None:
        message.cancellation_comment = body.cancellation_comment
    if "metadata" in sent:
        message.metadata.SetInParent()
        message.metadata.values.update(body.metadata or {})
    if body.billing is not None:
        message.billing.CopyFrom(body.billing.to_proto())
    if body.next_billing_date is not None:
        message.next_billing_date.FromDatetime(body.next_billing_date)
    try:
        sub = await request.app[SUBSCRIPTIONS_STUB].UpdateSubscription(message)
    except NotFound:
        raise resource_not_found("Subscription") from None
    [out] = await _render(request, merchant, [sub])
    return web.json_response(dump(out))


@merchant_api
async def update_payment_method(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /subscriptions/{id}/update-payment-method``: switch, or pay an on_hold's dues."""
    body = await parse_json_body(request, UpdatePaymentMethodBody)
    try:
        reply = await request.app[SUBSCRIPTIONS_STUB].UpdatePaymentMethod(
            pb.UpdatePaymentMethodRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                subscription_id=request.match_info["id"],
                payment_method_id=body.payment_method_id or "",
                customer_present=False,
                new_method=body.type == "new",
                return_url=body.return_url or "",
            )
        )
    except NotFound:
        raise resource_not_found("Subscription") from None
    out = PaymentLinkOut()
    if reply.payment_link:
        out = PaymentLinkOut(payment_link=reply.payment_link)
    elif reply.HasField("payment"):
        out = PaymentLinkOut(
            payment_id=reply.payment.payment_id or None,
            payment_link=reply.payment.challenge_url or None,
        )
    return web.json_response(dump(out))


@merchant_api
async def charge_subscription(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /subscriptions/{id}/charge``: an on-demand charge of the method on file."""
    body = await parse_json_body(request, ChargeBody)
    try:
        reply = await request.app[SUBSCRIPTIONS_STUB].ChargeSubscription(
            pb.ChargeSubscriptionRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                subscription_id=request.match_info["id"],
                product_price=body.product_price,
                product_currency=body.product_currency or "",
                product_description=body.product_description or "",
                metadata=body.metadata or {},
                idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
            )
        )
    except NotFound:
        raise resource_not_found("Subscription") from None
    return web.json_response({"payment_id": reply.payment.payment_id})


def _change_plan_request(
    request: web.Request, merchant: Merchant, body: ChangePlanBody
) -> pb.ChangePlanRequest:
    message = pb.ChangePlanRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        subscription_id=request.match_info["id"],
        product_id=body.product_id,
        quantity=body.quantity,
        proration_billing_mode=PRORATION_VALUES[body.proration_billing_mode],
        effective_at=(
            pb.PLAN_CHANGE_EFFECTIVE_AT_NEXT_BILLING_DATE
            if body.effective_at == "next_billing_date"
            else pb.PLAN_CHANGE_EFFECTIVE_AT_IMMEDIATELY
        ),
        on_payment_failure=(
            pb.ON_PAYMENT_FAILURE_PREVENT_CHANGE
            if body.on_payment_failure == "prevent_change"
            else pb.ON_PAYMENT_FAILURE_APPLY_CHANGE
        ),
        cancel_scheduled_change_plan=bool(body.cancel_scheduled_change_plan),
        metadata=body.metadata or {},
        customer_present=False,
        return_url=body.return_url or "",
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        # Dodo: absent or empty removes the existing add-ons.
        addons=[addon.to_proto() for addon in body.addons or []],
    )
    return message


@merchant_api
async def preview_change_plan(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /subscriptions/{id}/change-plan/preview``: what a change charges now (writes
    nothing) and the subscription after it."""
    body = await parse_json_body(request, ChangePlanBody)
    try:
        preview = await request.app[SUBSCRIPTIONS_STUB].PreviewChangePlan(
            _change_plan_request(request, merchant, body)
        )
    except NotFound as exc:
        if exc.reason is Reason.PRODUCT_NOT_FOUND:
            raise resource_not_found("Product") from None
        raise resource_not_found("Subscription") from None
    customer = await _customer(request, merchant, preview.new_plan.customer_id)
    return web.json_response(dump(PreviewChangePlanOut.from_proto(preview, customer)))


@merchant_api
async def change_plan(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /subscriptions/{id}/change-plan``: change (or schedule) the plan, charging what
    the preview computes; Dodo's ``{payment_id, payment_link, client_secret, expires_on}``."""
    body = await parse_json_body(request, ChangePlanBody)
    try:
        reply = await request.app[SUBSCRIPTIONS_STUB].ChangePlan(
            _change_plan_request(request, merchant, body)
        )
    except NotFound as exc:
        if exc.reason is Reason.PRODUCT_NOT_FOUND:
            raise resource_not_found("Product") from None
        raise resource_not_found("Subscription") from None
    out = PaymentLinkOut()
    if reply.HasField("payment"):
        out = PaymentLinkOut(
            payment_id=reply.payment.payment_id or None,
            payment_link=reply.payment.challenge_url or None,
        )
    return web.json_response(dump(out))


@merchant_api
async def cancel_scheduled_change(request: web.Request, merchant: Merchant) -> web.Response:
    """``DELETE /subscriptions/{id}/change-plan/scheduled``: drop the scheduled change; 204."""
    try:
        await request.app[SUBSCRIPTIONS_STUB].CancelScheduledChange(
            pb.CancelScheduledChangeRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                subscription_id=request.match_info["id"],
            )
        )
    except (NotFound, InvalidArgument):
        raise resource_not_found("Subscription") from None
    return web.Response(status=204)


@merchant_api
async def advance_test_clock(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /test-helpers/clock/advance``: move the business's test clock (test keys only)."""
    if merchant.mode != "test":
        raise resource_not_found("Resource")
    body = await parse_json_body(request, AdvanceClockBody)
    if (body.seconds is None) == (body.to is None):  # the document's oneOf, for other clients
        raise ApiProblem(
            422,
            "INVALID_REQUEST_BODY",
            "Invalid body: give exactly one of seconds or to",
            errors=[{"field": "seconds", "message": "Give exactly one of seconds or to"}],
        )
    message = pb.AdvanceTestClockRequest(
        business_id=merchant.business_id, mode=merchant.proto_mode, seconds=body.seconds or 0
    )
    if body.to is not None:
        message.to.FromDatetime(body.to)
    clock = await request.app[SUBSCRIPTIONS_STUB].AdvanceTestClock(message)
    out = ClockOut(
        business_id=clock.business_id,
        now=clock.now.ToDatetime(tzinfo=UTC),
        offset_seconds=clock.offset_seconds,
    )
    return web.json_response(dump(out))
