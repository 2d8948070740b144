"""Every route of the gateway, in one table, each named for its use case."""

from __future__ import annotations

from aiohttp import web

from gateway.api import (
    addons,
    business,
    checkouts,
    customers,
    invoices,
    licenses,
    openapi,
    payments,
    products,
    subscriptions,
    webhooks,
)

ROUTES = [
    web.post("/customers", customers.create_customer, name="create_customer"),
    web.get("/customers", customers.list_customers, name="list_customers", allow_head=False),
    web.get(
        "/customers/{customer_id}",
        customers.retrieve_customer,
        name="retrieve_customer",
        allow_head=False,
    ),
    web.patch("/customers/{customer_id}", customers.update_customer, name="update_customer"),
    web.post(
        "/customers/{customer_id}/customer-portal/session",
        customers.create_portal_session,
        name="create_portal_session",
    ),
    web.post("/products", products.create_product, name="create_product"),
    web.get("/products", products.list_products, name="list_products", allow_head=False),
    web.get("/products/{id}", products.retrieve_product, name="retrieve_product", allow_head=False),
    web.patch("/products/{id}", products.update_product, name="update_product"),
    web.delete("/products/{id}", products.archive_product, name="archive_product"),
    web.post("/products/{id}/unarchive", products.unarchive_product, name="unarchive_product"),
    web.post("/addons", addons.create_addon, name="create_addon"),
    web.get("/addons", addons.list_addons, name="list_addons", allow_head=False),
    web.get("/addons/{id}", addons.retrieve_addon, name="retrieve_addon", allow_head=False),
    web.patch("/addons/{id}", addons.update_addon, name="update_addon"),
    web.delete("/addons/{id}", addons.archive_addon, name="archive_addon"),
    web.post("/addons/{id}/unarchive", addons.unarchive_addon, name="unarchive_addon"),
    web.post("/subscriptions", subscriptions.create_subscription, name="create_subscription"),
    web.get(
        "/subscriptions",
        subscriptions.list_subscriptions,
        name="list_subscriptions",
        allow_head=False,
    ),
    web.get(
        "/subscriptions/{id}",
        subscriptions.retrieve_subscription,
        name="retrieve_subscription",
        allow_head=False,
    ),
    web.patch("/subscriptions/{id}", subscriptions.update_subscription, name="update_subscription"),
    web.post(
        "/subscriptions/{id}/update-payment-method",
        subscriptions.update_payment_method,
        name="update_subscription_payment_method",
    ),
    web.post(
        "/subscriptions/{id}/charge", subscriptions.charge_subscription, name="charge_subscription"
    ),
    web.post(
        "/subscriptions/{id}/change-plan",
        subscriptions.change_plan,
        name="change_subscription_plan",
    ),
    web.post(
        "/subscriptions/{id}/change-plan/preview",
        subscriptions.preview_change_plan,
        name="preview_subscription_change_plan",
    ),
    web.delete(
        "/subscriptions/{id}/change-plan/scheduled",
        subscriptions.cancel_scheduled_change,
        name="cancel_subscription_change_plan",
    ),
    web.post(
        "/test-helpers/clock/advance", subscriptions.advance_test_clock, name="advance_test_clock"
    ),
    web.get("/business", business.retrieve_business, name="retrieve_business", allow_head=False),
    web.patch("/business", business.update_business, name="update_business"),
    web.get("/openapi.json", openapi.openapi_document, name="openapi_document"),
    web.get("/payments", payments.list_payments, name="list_payments", allow_head=False),
    web.get(
        "/payments/{payment_id}",
        payments.retrieve_payment,
        name="retrieve_payment",
        allow_head=False,
    ),
    web.get(
        "/customers/{customer_id}/payment-methods",
        payments.list_customer_payment_methods,
        name="list_customer_payment_methods",
        allow_head=False,
    ),
    web.delete(
        "/customers/{customer_id}/payment-methods/{payment_method_id}",
        payments.delete_customer_payment_method,
        name="delete_customer_payment_method",
    ),
    web.get(
        "/invoices/payments/{payment_id}",
        invoices.retrieve_payment_invoice,
        name="retrieve_payment_invoice",
        allow_head=False,
    ),
    web.post("/checkouts", checkouts.create_checkout, name="create_checkout"),
    web.get(
        "/checkouts/{id}", checkouts.retrieve_checkout, name="retrieve_checkout", allow_head=False
    ),
    *licenses.ROUTES,
    web.post("/webhooks", webhooks.create_webhook, name="create_webhook"),
    web.get("/webhooks", webhooks.list_webhooks, name="list_webhooks", allow_head=False),
    web.get(
        "/webhooks/{webhook_id}",
        webhooks.retrieve_webhook,
        name="retrieve_webhook",
        allow_head=False,
    ),
    web.patch("/webhooks/{webhook_id}", webhooks.update_webhook, name="update_webhook"),
    web.delete("/webhooks/{webhook_id}", webhooks.delete_webhook, name="delete_webhook"),
    web.get(
        "/webhooks/{webhook_id}/secret",
        webhooks.retrieve_webhook_secret,
        name="retrieve_webhook_secret",
        allow_head=False,
    ),
    web.post(
        "/webhooks/{webhook_id}/secret/rotate",
        webhooks.rotate_webhook_secret,
        name="rotate_webhook_secret",
    ),
    web.get(
        "/webhooks/{webhook_id}/headers",
        webhooks.retrieve_webhook_headers,
        name="retrieve_webhook_headers",
        allow_head=False,
    ),
    web.patch(
        "/webhooks/{webhook_id}/headers",
        webhooks.update_webhook_headers,
        name="update_webhook_headers",
    ),
    web.get(
        "/webhooks/{webhook_id}/deliveries",
        webhooks.list_webhook_deliveries,
        name="list_webhook_deliveries",
        allow_head=False,
    ),
]
