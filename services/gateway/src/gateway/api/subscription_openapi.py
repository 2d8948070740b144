"""The ``/subscriptions`` and test-clock part of the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.api.checkouts import (
    CHECKOUT_MODELS,
    CheckoutSessionOut,
    CheckoutStatusOut,
    CreateCheckoutBody,
)
from gateway.api.openapi import (
    _BODY_ERRORS,
    _COMMON_ERRORS,
    _NO_CONTENT,
    _UNSUPPORTED,
    _json,
    _problem,
    _query_parameters,
    _ref,
)
from gateway.api.subscription_schemas import (
    AdvanceClockBody,
    ChangePlanBody,
    ChargeBody,
    ChargeOut,
    ClockOut,
    CreateSubscriptionBody,
    CreateSubscriptionOut,
    ListSubscriptionsQuery,
    PaymentLinkOut,
    PreviewChangePlanOut,
    RetrieveQuery,
    SubscriptionListOut,
    SubscriptionOut,
    UpdatePaymentMethodBody,
    UpdateSubscriptionBody,
)

# --- subscriptions -------------------------------------------------------------------------

MODELS: tuple[type[BaseModel], ...] = (
    CreateSubscriptionBody,
    UpdateSubscriptionBody,
    UpdatePaymentMethodBody,
    ChargeBody,
    ChangePlanBody,
    AdvanceClockBody,
    SubscriptionOut,
    PreviewChangePlanOut,
    SubscriptionListOut,
    CreateSubscriptionOut,
    PaymentLinkOut,
    ChargeOut,
    ClockOut,
    *CHECKOUT_MODELS,
)
_SUBSCRIPTION_NOT_FOUND = {"404": _problem("No such subscription for this business and mode")}
_STATE_CONFLICT = {
    "409": _problem("The subscription's status does not allow this change (x-should-retry: false)")
}


_PLAN_NOT_FOUND = {"404": _problem("No such subscription or product for this business and mode")}
_PLAN_CONFLICT = {
    "409": _problem(
        "The subscription is not active, is already on this plan, quantity and add-ons, a "
        "change is already scheduled or waiting for its payment, or it has no payment method "
        "(SUBSCRIPTION_STATE_CONFLICT); or the product cannot be its plan: one-time, archived, "
        "another currency, more seats than its max_quantity (PLAN_UNAVAILABLE); or an add-on "
        "is not offered by the product, archived, in another currency or over its "
        "max_quantity (ADDON_UNAVAILABLE). x-should-retry: false"
    )
}


def _body_op(
    operation: str, summary: str, body: type[BaseModel], ok: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "operationId": operation,
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(body)}}},
        "responses": {
            "200": ok,
            **_BODY_ERRORS,
            "422": _problem(_UNSUPPORTED),
            **extra,
            **_COMMON_ERRORS,
        },
    }


def paths() -> dict[str, Any]:
    """The paths of the subscriptions API."""
    sub_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    }
    with_id = {"parameters": [sub_id]}
    return {
        "/checkouts": {
            "post": _body_op(
                "create_checkout",
                "Open a checkout session: the cart is paid once on the hosted page",
                CreateCheckoutBody,
                _json(CheckoutSessionOut, "The session and its hosted page"),
                **{"404": _problem("No such customer for this business and mode")},
            ),
        },
        "/checkouts/{id}": {
            "get": {
                "operationId": "retrieve_checkout",
                "summary": "A checkout session and its payment's outcome",
                "parameters": [sub_id],
                "responses": {
                    "200": _json(CheckoutStatusOut, "The session"),
                    "404": _problem("No such checkout session for this business and mode"),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/subscriptions": {
            "post": _body_op(
                "create_subscription",
                "Create a subscription; with payment_method_id the first period is charged now",
                CreateSubscriptionBody,
                _json(CreateSubscriptionOut, "The new subscription and its first payment"),
                **{
                    "404": _problem("No such customer or product for this business and mode"),
                    "409": _problem(
                        "The product is one-time or archived; or an add-on is not offered by "
                        "the product, archived, in another currency or over its max_quantity "
                        "(ADDON_UNAVAILABLE)"
                    ),
                },
            ),
            "get": {
                "operationId": "list_subscriptions",
                "summary": "List subscriptions, newest first, one page at a time",
                "parameters": _query_parameters(ListSubscriptionsQuery),
                "responses": {
                    "200": _json(SubscriptionListOut, "One page of subscriptions"),
                    "422": _problem("Invalid or unknown query parameters"),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/subscriptions/{id}": {
            "get": {
                "operationId": "retrieve_subscription",
                "summary": "Retrieve a subscription",
                "parameters": [sub_id, *_query_parameters(RetrieveQuery)],
                "responses": {
                    "200": _json(SubscriptionOut, "The subscription"),
                    **_SUBSCRIPTION_NOT_FOUND,
                    "422": _problem("Invalid, repeated or unknown query parameters"),
                    **_COMMON_ERRORS,
                },
            },
            "patch": {
                **_body_op(
                    "update_subscription",
                    "Cancel now or at period end, undo, change metadata, billing or billing date",
                    UpdateSubscriptionBody,
                    _json(SubscriptionOut, "The subscription after the change"),
                    **_SUBSCRIPTION_NOT_FOUND,
                    **_STATE_CONFLICT,
                ),
                **with_id,
            },
        },
        "/subscriptions/{id}/update-payment-method": {
            "post": {
                **_body_op(
                    "update_subscription_payment_method",
                    "Switch to a saved method; an on_hold subscription pays its dues with it",
                    UpdatePaymentMethodBody,
                    _json(PaymentLinkOut, "The dues payment (if any) and its 3-D Secure page"),
                    **_SUBSCRIPTION_NOT_FOUND,
                    **_STATE_CONFLICT,
                ),
                **with_id,
            },
        },
        "/subscriptions/{id}/charge": {
            "post": {
                **_body_op(
                    "charge_subscription",
                    "Charge an active subscription's method on demand",
                    ChargeBody,
                    _json(ChargeOut, "The payment"),
                    **_SUBSCRIPTION_NOT_FOUND,
                    **_STATE_CONFLICT,
                ),
                **with_id,
            },
        },
        "/subscriptions/{id}/change-plan": {
            "post": {
                **_body_op(
                    "change_subscription_plan",
                    "Change plan or quantity now (charging the preview's amount) or at the "
                    "next billing date",
                    ChangePlanBody,
                    _json(PaymentLinkOut, "The plan-change payment (if one was made)"),
                    **_PLAN_NOT_FOUND,
                    **_PLAN_CONFLICT,
                ),
                **with_id,
            },
        },
        "/subscriptions/{id}/change-plan/preview": {
            "post": {
                **_body_op(
                    "preview_subscription_change_plan",
                    "What a plan change would charge now and the subscription after it",
                    ChangePlanBody,
                    _json(PreviewChangePlanOut, "The immediate charge and the new plan"),
                    **_PLAN_NOT_FOUND,
                    **_PLAN_CONFLICT,
                ),
                **with_id,
            },
        },
        "/subscriptions/{id}/change-plan/scheduled": {
            "delete": {
                "operationId": "cancel_subscription_change_plan",
                "summary": "Cancel the plan change scheduled for the next billing date",
                "parameters": [sub_id],
                "responses": {
                    **_NO_CONTENT,
                    **_SUBSCRIPTION_NOT_FOUND,
                    "409": _problem("No plan change is scheduled (x-should-retry: false)"),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/test-helpers/clock/advance": {
            "post": _body_op(
                "advance_test_clock",
                "Move the business's test clock forward (test-mode keys only; 404 with a live key)",
                AdvanceClockBody,
                _json(ClockOut, "The business's clock after the move"),
                **{
                    "404": _problem("A live-mode key has no test clock"),
                    "409": _problem(
                        "`to` is before the clock's now (it never goes backwards) "
                        "or more than 20 years after it"
                    ),
                },
            ),
        },
    }
