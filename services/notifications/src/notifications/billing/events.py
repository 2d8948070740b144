"""The event types the billing emails are written from (produced by invoicing and
subscriptions; this service only consumes them)."""

from __future__ import annotations

INVOICE_CREATED = "invoice.created"
SUBSCRIPTION_ACTIVE = "subscription.active"
SUBSCRIPTION_ON_HOLD = "subscription.on_hold"
SUBSCRIPTION_CANCELLED = "subscription.cancelled"
SUBSCRIPTION_UPDATED = "subscription.updated"
SUBSCRIPTION_RENEWAL_REMINDER = "subscription.renewal_reminder"
LICENSE_KEY_CREATED = "license_key.created"
