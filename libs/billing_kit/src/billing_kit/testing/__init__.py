"""Helpers for test suites: a throwaway database, an isolated broker namespace,
a TCP proxy that can simulate outages, and polling assertions.

These are importable by every service's tests (and the root ``conftest.py``);
they are not tests themselves.

* :func:`mongo_server` yields a MongoDB URL: ``MONGODB_URL`` from the
  environment when set (so suites also run against a real MongoDB), otherwise
  a SecantusDB process started on a free port with in-memory storage.
* :func:`broker_namespace` yields a unique exchange name and queue prefix on
  the shared RabbitMQ and deletes what was created under them afterwards.
* :class:`TcpProxy` sits between a client and a server; ``cut()`` drops every
  connection and refuses new ones until ``restore()``.
* :func:`running_service` starts a service's ``create_app(settings)`` on free
  ports against that database (and, when given, a broker namespace) and yields
  a :class:`RunningService`: the runtime, a channel to it, health and readiness.
  Every service's integration tests use it instead of their own copy.
"""

from billing_kit.testing.broker import (
    DEFAULT_AMQP_URL,
    BrokerNamespace,
    MessageTap,
    amqp_url_from_env,
    broker_namespace,
    delete_broker_objects,
    take_queue_messages,
    tap_exchange,
)
from billing_kit.testing.common import eventually, unique_name
from billing_kit.testing.mongo import mongo_server, secantusdb, wait_until_mongo_answers
from billing_kit.testing.net import TcpProxy, free_port, with_port
from billing_kit.testing.service import RunningService, running_service, service_fixture

__all__ = [
    "DEFAULT_AMQP_URL",
    "BrokerNamespace",
    "MessageTap",
    "RunningService",
    "TcpProxy",
    "amqp_url_from_env",
    "broker_namespace",
    "delete_broker_objects",
    "eventually",
    "free_port",
    "mongo_server",
    "running_service",
    "secantusdb",
    "service_fixture",
    "take_queue_messages",
    "tap_exchange",
    "unique_name",
    "wait_until_mongo_answers",
    "with_port",
]
