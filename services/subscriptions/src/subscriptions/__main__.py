"""Entry point: ``python -m subscriptions``."""

from billing_kit.runtime import run_main

from subscriptions.app import create_app
from subscriptions.config import SubscriptionsSettings

run_main(create_app, SubscriptionsSettings)
