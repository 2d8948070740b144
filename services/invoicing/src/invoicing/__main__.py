"""Entry point: ``python -m invoicing``."""

from billing_kit.runtime import run_main

from invoicing.app import create_app
from invoicing.config import InvoicingSettings

run_main(create_app, InvoicingSettings)
