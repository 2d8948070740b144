"""gRPC adapter of add-ons: proto <-> models (the kit's interceptor maps domain errors)."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.subscriptions.v1 import addons_pb2, addons_pb2_grpc
from billing_kit.scoping import make_page, mode_to_proto

from subscriptions.addons.models import Addon
from subscriptions.addons.service import ADDON, AddonsService
from subscriptions.catalogue.servicer import actor, scope, set_archived

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def addon_to_proto(addon: Addon) -> addons_pb2.Addon:
    """The wire form of an add-on."""
    message = addons_pb2.Addon(
        addon_id=addon.addon_id,
        business_id=addon.business_id,
        mode=mode_to_proto(addon.mode),
        name=addon.name,
        price=addon.price,
        currency=addon.currency,
        tax_category=addon.tax_category,
        max_quantity=addon.max_quantity,
        archived=addon.archived,
    )
    if addon.description is not None:
        message.description = addon.description
    message.created_at.FromDatetime(addon.created_at)
    message.updated_at.FromDatetime(addon.updated_at)
    return message


class AddonsServicer(addons_pb2_grpc.AddonsServiceServicer):
    """Implements billing.subscriptions.v1.AddonsService."""

    def __init__(self, service: AddonsService) -> None:
        self._service = service

    async def CreateAddon(
        self, request: addons_pb2.CreateAddonRequest, context: Context
    ) -> addons_pb2.Addon:
        """A new add-on of the calling business."""
        fields: dict[str, Any] = {
            "name": request.name,
            "price": request.price,
            "currency": request.currency,
            "tax_category": request.tax_category,
            "max_quantity": request.max_quantity,
        }
        if request.HasField("description"):
            fields["description"] = request.description
        created = await self._service.create_addon(
            *scope(request),
            fields,
            actor=actor(request),
        )
        return addon_to_proto(created)

    async def GetAddon(
        self, request: addons_pb2.GetAddonRequest, context: Context
    ) -> addons_pb2.Addon:
        """One add-on of the calling business (archived ones too)."""
        found = await self._service.get_addon(*scope(request), request.addon_id)
        return addon_to_proto(found)

    async def ListAddons(
        self, request: addons_pb2.ListAddonsRequest, context: Context
    ) -> addons_pb2.ListAddonsResponse:
        """A page of the calling business's add-ons, newest first."""
        found = await self._service.list_addons(
            *scope(request),
            archived=request.archived,
            page=make_page(request.page_size, request.page_number),
        )
        return addons_pb2.ListAddonsResponse(addons=[addon_to_proto(a) for a in found])

    async def UpdateAddon(
        self, request: addons_pb2.UpdateAddonRequest, context: Context
    ) -> addons_pb2.Addon:
        """Change the fields set (and clear the fields named in ``cleared``)."""
        changes: dict[str, Any] = {}
        for optional in (
            "name",
            "description",
            "price",
            "currency",
            "tax_category",
            "max_quantity",
        ):
            if request.HasField(optional):
                changes[optional] = getattr(request, optional)
        ADDON.clear(changes, request.cleared)
        updated = await self._service.update_addon(
            *scope(request),
            request.addon_id,
            changes,
            actor=actor(request),
        )
        return addon_to_proto(updated)

    async def ArchiveAddon(
        self, request: addons_pb2.ArchiveAddonRequest, context: Context
    ) -> addons_pb2.Addon:
        """No longer offered; subscriptions that have it keep it."""
        found = await set_archived(self._service, request, request.addon_id, archived=True)
        return addon_to_proto(found)

    async def UnarchiveAddon(
        self, request: addons_pb2.ArchiveAddonRequest, context: Context
    ) -> addons_pb2.Addon:
        """Offered again."""
        found = await set_archived(self._service, request, request.addon_id, archived=False)
        return addon_to_proto(found)
