"""gRPC adapter of license keys: proto <-> models (the kit's interceptor maps domain errors)."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.subscriptions.v1 import licenses_pb2, licenses_pb2_grpc
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.scoping import list_business, make_page, mode_from_proto, mode_to_proto
from google.protobuf.empty_pb2 import Empty

from subscriptions.licenses.models import LicenseKey, LicenseKeyInstance
from subscriptions.licenses.repository import Scope
from subscriptions.licenses.service import KeyChanges, LicensesService, customers, merchant
from subscriptions.subscriptions.convert import from_timestamp, timestamp

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
_CLEARABLE = {"activations_limit", "expires_at"}


def instance_to_proto(instance: LicenseKeyInstance) -> licenses_pb2.LicenseKeyInstance:
    """The wire form of an instance."""
    return licenses_pb2.LicenseKeyInstance(
        instance_id=instance.instance_id,
        business_id=instance.business_id,
        mode=mode_to_proto(instance.mode),
        license_key_id=instance.license_key_id,
        name=instance.name,
        created_at=timestamp(instance.created_at),
    )


class LicensesServicer(licenses_pb2_grpc.LicenseServiceServicer):
    """LicenseService over :class:`LicensesService`."""

    def __init__(self, service: LicensesService) -> None:
        self.service = service

    async def _key_to_proto(self, key: LicenseKey) -> licenses_pb2.LicenseKey:
        message = licenses_pb2.LicenseKey(
            license_key_id=key.license_key_id,
            business_id=key.business_id,
            mode=mode_to_proto(key.mode),
            customer_id=key.customer_id,
            product_id=key.product_id,
            status=(await self.service.status_of(key)).value,
            source=key.source.value,
            instances_count=key.instances_count,
            payment_id=key.payment_id,
            subscription_id=key.subscription_id,
            created_at=timestamp(key.created_at),
            activation_message=key.activation_message,
            key=self.service.open_key(key),
            product_name=key.product_name,
        )
        if key.activations_limit is not None:
            message.activations_limit = key.activations_limit
        if key.expires_at is not None:
            message.expires_at.CopyFrom(timestamp(key.expires_at))
        return message

    # Public.

    async def ActivateLicenseKey(
        self, request: licenses_pb2.ActivateLicenseKeyRequest, context: Context
    ) -> licenses_pb2.ActivateLicenseKeyResponse:
        done = await self.service.activate(
            request.license_key, request.name, client_key=request.client_key
        )
        return licenses_pb2.ActivateLicenseKeyResponse(
            instance=instance_to_proto(done.instance),
            customer_id=done.key.customer_id,
            product_id=done.key.product_id,
        )

    async def DeactivateLicenseKey(
        self, request: licenses_pb2.DeactivateLicenseKeyRequest, context: Context
    ) -> Empty:
        await self.service.deactivate(
            request.license_key, request.license_key_instance_id, client_key=request.client_key
        )
        return Empty()

    async def ValidateLicenseKey(
        self, request: licenses_pb2.ValidateLicenseKeyRequest, context: Context
    ) -> licenses_pb2.ValidateLicenseKeyResponse:
        valid = await self.service.validate(
            request.license_key, request.license_key_instance_id, client_key=request.client_key
        )
        return licenses_pb2.ValidateLicenseKeyResponse(valid=valid)

    # Merchant and portal.

    async def ImportLicenseKey(
        self, request: licenses_pb2.ImportLicenseKeyRequest, context: Context
    ) -> licenses_pb2.LicenseKey:
        key = await self.service.import_key(
            _business(request.business_id),
            mode_from_proto(request.mode),
            request.customer_id,
            request.product_id,
            request.key,
            activations_limit=(
                request.activations_limit if request.HasField("activations_limit") else None
            ),
            expires_at=(
                from_timestamp(request.expires_at) if request.HasField("expires_at") else None
            ),
            actor=merchant(request.merchant_key_id),
        )
        return await self._key_to_proto(key)

    async def GetLicenseKey(
        self, request: licenses_pb2.GetLicenseKeyRequest, context: Context
    ) -> licenses_pb2.LicenseKey:
        scope = Scope(
            _business(request.business_id),
            mode_from_proto(request.mode),
            customers(request.customer_id, ()),
        )
        return await self._key_to_proto(await self.service.get_key(scope, request.license_key_id))

    async def ListLicenseKeys(
        self, request: licenses_pb2.ListLicenseKeysRequest, context: Context
    ) -> licenses_pb2.ListLicenseKeysResponse:
        ids = customers(request.customer_id, request.customer_ids)
        scope = Scope(list_business(request.business_id, ids), mode_from_proto(request.mode), ids)
        keys = await self.service.list_keys(
            scope,
            make_page(request.page_size, request.page_number),
            product_id=request.product_id,
            status=request.status,
        )
        return licenses_pb2.ListLicenseKeysResponse(
            license_keys=[await self._key_to_proto(key) for key in keys]
        )

    async def UpdateLicenseKey(
        self, request: licenses_pb2.UpdateLicenseKeyRequest, context: Context
    ) -> licenses_pb2.LicenseKey:
        unknown = set(request.cleared) - _CLEARABLE
        if unknown:
            raise InvalidArgument(
                f"cannot clear {sorted(unknown)}",
                reason=Reason.INVALID_LICENSE_KEY_REQUEST,
                field="cleared",
            )
        changes = KeyChanges(
            activations_limit=(
                request.activations_limit if request.HasField("activations_limit") else None
            ),
            clear_activations_limit="activations_limit" in request.cleared,
            disabled=request.disabled if request.HasField("disabled") else None,
            expires_at=(
                from_timestamp(request.expires_at) if request.HasField("expires_at") else None
            ),
            clear_expires_at="expires_at" in request.cleared,
        )
        scope = Scope(_business(request.business_id), mode_from_proto(request.mode))
        key = await self.service.update_key(
            scope, request.license_key_id, changes, merchant(request.merchant_key_id)
        )
        return await self._key_to_proto(key)

    async def GetLicenseKeyInstance(
        self, request: licenses_pb2.GetLicenseKeyInstanceRequest, context: Context
    ) -> licenses_pb2.LicenseKeyInstance:
        scope = Scope(
            _business(request.business_id),
            mode_from_proto(request.mode),
            customers(request.customer_id, ()),
        )
        return instance_to_proto(await self.service.get_instance(scope, request.instance_id))

    async def ListLicenseKeyInstances(
        self, request: licenses_pb2.ListLicenseKeyInstancesRequest, context: Context
    ) -> licenses_pb2.ListLicenseKeyInstancesResponse:
        ids = customers("", request.customer_ids)
        scope = Scope(list_business(request.business_id, ids), mode_from_proto(request.mode), ids)
        found = await self.service.list_instances(
            scope, request.license_key_id, make_page(request.page_size, request.page_number)
        )
        return licenses_pb2.ListLicenseKeyInstancesResponse(
            instances=[instance_to_proto(i) for i in found]
        )

    async def UpdateLicenseKeyInstance(
        self, request: licenses_pb2.UpdateLicenseKeyInstanceRequest, context: Context
    ) -> licenses_pb2.LicenseKeyInstance:
        scope = Scope(_business(request.business_id), mode_from_proto(request.mode))
        return instance_to_proto(
            await self.service.rename_instance(
                scope, request.instance_id, request.name, merchant(request.merchant_key_id)
            )
        )

    async def RemoveLicenseKeyInstance(
        self, request: licenses_pb2.RemoveLicenseKeyInstanceRequest, context: Context
    ) -> Empty:
        if not request.customer_id:
            raise InvalidArgument(
                "customer_id is required", reason=Reason.INVALID_SCOPE, field="customer_id"
            )
        scope = Scope(
            _business(request.business_id), mode_from_proto(request.mode), (request.customer_id,)
        )
        await self.service.remove_instance(scope, request.instance_id)
        return Empty()


def _business(business_id: str) -> str:
    return list_business(business_id, ())
