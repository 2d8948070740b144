"""Entry point: ``python -m payments``."""

from billing_kit.runtime import run_main

from payments.app import create_app
from payments.config import PaymentsSettings

run_main(create_app, PaymentsSettings)
