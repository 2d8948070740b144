"""Entry point: ``python -m notifications``."""

from billing_kit.runtime import run_main

from notifications.app import create_app
from notifications.config import NotificationsSettings

run_main(create_app, NotificationsSettings)
