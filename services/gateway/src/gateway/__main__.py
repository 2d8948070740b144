"""``python -m gateway``: serve the HTTP edge until SIGTERM."""

from billing_kit.runtime import run_main

from gateway.app import create_runtime
from gateway.config import GatewaySettings

run_main(create_runtime, GatewaySettings)
