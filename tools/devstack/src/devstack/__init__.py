"""Developer stack: run the whole system locally (`make run`) and in the e2e tests."""

from devstack.mailbox import Mailbox, MailboxTimeout, message_link, message_links
from devstack.seed import AuthAdmin, BusinessWithKey
from devstack.smtp_sink import StoredMessage, read_mailbox
from devstack.stack import Stack, StackError
from devstack.topology import (
    ALL_SERVICES,
    BACKEND_SERVICES,
    PortalBaseUrls,
    ServiceName,
    StackPorts,
)

__all__ = [
    "ALL_SERVICES",
    "BACKEND_SERVICES",
    "AuthAdmin",
    "BusinessWithKey",
    "Mailbox",
    "MailboxTimeout",
    "PortalBaseUrls",
    "ServiceName",
    "Stack",
    "StackError",
    "StackPorts",
    "StoredMessage",
    "message_link",
    "message_links",
    "read_mailbox",
]
