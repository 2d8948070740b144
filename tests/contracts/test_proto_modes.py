"""Every gRPC contract spells a record's mode the same way: billing.common.v1.Mode."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import billing
from google.protobuf.descriptor import Descriptor, FieldDescriptor

MODE_ENUM = "billing.common.v1.Mode"


def _messages(descriptor: Descriptor) -> Iterator[Descriptor]:
    yield descriptor
    for nested in descriptor.nested_types:
        yield from _messages(nested)


def _mode_fields() -> list[tuple[str, FieldDescriptor]]:
    fields = []
    for module_info in pkgutil.walk_packages(billing.__path__, "billing."):
        if not module_info.name.endswith("_pb2"):
            continue
        file_descriptor = importlib.import_module(module_info.name).DESCRIPTOR
        for top in file_descriptor.message_types_by_name.values():
            for message in _messages(top):
                fields.extend(
                    (f"{message.full_name}.{field.name}", field)
                    for field in message.fields
                    if field.name == "mode"
                )
    return fields


def test_every_mode_field_is_the_shared_enum() -> None:
    fields = _mode_fields()
    # Every service's contract carries a mode; finding none would mean the walk is broken.
    packages = {name.split(".")[1] for name, _ in fields}
    assert packages >= {"auth", "subscriptions", "payments", "invoicing", "notifications"}
    wrong = [
        name
        for name, field in fields
        if field.type != FieldDescriptor.TYPE_ENUM or field.enum_type.full_name != MODE_ENUM
    ]
    assert wrong == [], f"mode fields not typed {MODE_ENUM}: {wrong}"


def test_only_the_common_package_defines_a_mode_enum() -> None:
    owners = []
    for module_info in pkgutil.walk_packages(billing.__path__, "billing."):
        if module_info.name.endswith("_pb2"):
            file_descriptor = importlib.import_module(module_info.name).DESCRIPTOR
            owners.extend(
                enum.full_name
                for enum in file_descriptor.enum_types_by_name.values()
                if enum.name == "Mode"
            )
    assert owners == [MODE_ENUM]
