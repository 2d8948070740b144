"""Developer stack: run the whole system locally (`make run`) and in the e2e tests."""

from devstack.seed import AuthAdmin, BusinessWithKey
from devstack.smtp_sink import StoredMessage, read_mailbox
from devstack.stack import Stack, StackError
from devstack.topology import ALL_SERVICES, BACKEND_SERVICES, ServiceName, StackPorts

__all__ = [
    "ALL_SERVICES",
    "BACKEND_SERVICES",
    "AuthAdmin",
    "BusinessWithKey",
    "ServiceName",
    "Stack",
    "StackError",
    "StackPorts",
    "StoredMessage",
    "read_mailbox",
]
