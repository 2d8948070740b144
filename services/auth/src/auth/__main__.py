"""``python -m auth``: run the auth service until SIGTERM."""

from billing_kit.runtime import run_main

from auth.app import create_app
from auth.config import AuthSettings

if __name__ == "__main__":
    run_main(create_app, AuthSettings)
