"""gRPC adapter of products: proto <-> models (the kit's interceptor maps domain errors)."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.subscriptions.v1 import products_pb2, products_pb2_grpc
from billing_kit.scoping import make_page, mode_to_proto

from subscriptions.catalogue.servicer import actor, scope, set_archived
from subscriptions.products.models import OneTimePrice, Product, RecurringPrice
from subscriptions.products.service import PRODUCT, ProductsService

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

_RECURRING_FIELDS = (
    "payment_frequency_count",
    "payment_frequency_interval",
    "subscription_period_count",
    "subscription_period_interval",
    "trial_period_days",
)


def price_from_proto(price: products_pb2.Price) -> dict[str, Any]:
    """The price fields of its type (the model refuses a type it does not know)."""
    out: dict[str, Any] = {
        "type": price.type,
        "price": price.price,
        "currency": price.currency,
        "discount_bps": price.discount_bps,
        "purchasing_power_parity": price.purchasing_power_parity,
    }
    if price.HasField("tax_inclusive"):
        out["tax_inclusive"] = price.tax_inclusive
    if price.type == "one_time_price":
        out["pay_what_you_want"] = price.pay_what_you_want
        if price.HasField("suggested_price"):
            out["suggested_price"] = price.suggested_price
    elif price.type == "recurring_price":
        out.update({field: getattr(price, field) for field in _RECURRING_FIELDS})
    return out


def price_to_proto(price: OneTimePrice | RecurringPrice) -> products_pb2.Price:
    """The wire form of a price."""
    message = products_pb2.Price(
        type=price.type,
        price=price.price,
        currency=price.currency,
        discount_bps=price.discount_bps,
        purchasing_power_parity=price.purchasing_power_parity,
    )
    if price.tax_inclusive is not None:
        message.tax_inclusive = price.tax_inclusive
    if isinstance(price, OneTimePrice):
        message.pay_what_you_want = price.pay_what_you_want
        if price.suggested_price is not None:
            message.suggested_price = price.suggested_price
    else:
        for field in _RECURRING_FIELDS:
            setattr(message, field, getattr(price, field))
    return message


def product_to_proto(product: Product) -> products_pb2.Product:
    """The wire form of a product."""
    message = products_pb2.Product(
        product_id=product.product_id,
        business_id=product.business_id,
        mode=mode_to_proto(product.mode),
        name=product.name,
        price=price_to_proto(product.price),
        tax_category=product.tax_category,
        is_recurring=product.is_recurring,
        archived=product.archived,
        license_key_enabled=product.license_key_enabled,
        metadata=product.metadata,
        plan_group=product.plan_group,
        max_quantity=product.max_quantity,
        addons=product.addons,
    )
    if product.description is not None:
        message.description = product.description
    if product.license_key_activations_limit is not None:
        message.license_key_activations_limit = product.license_key_activations_limit
    if product.license_key_duration is not None:
        message.license_key_duration.count = product.license_key_duration.count
        message.license_key_duration.interval = product.license_key_duration.interval
    if product.license_key_activation_message is not None:
        message.license_key_activation_message = product.license_key_activation_message
    message.created_at.FromDatetime(product.created_at)
    message.updated_at.FromDatetime(product.updated_at)
    return message


def _duration(duration: products_pb2.LicenseKeyDuration) -> dict[str, Any]:
    return {"count": duration.count, "interval": duration.interval}


class ProductsServicer(products_pb2_grpc.ProductsServiceServicer):
    """Implements billing.subscriptions.v1.ProductsService."""

    def __init__(self, service: ProductsService) -> None:
        self._service = service

    async def CreateProduct(
        self, request: products_pb2.CreateProductRequest, context: Context
    ) -> products_pb2.Product:
        """A new product of the calling business."""
        fields: dict[str, Any] = {
            "name": request.name,
            "price": price_from_proto(request.price),
            "tax_category": request.tax_category,
            "license_key_enabled": request.license_key_enabled,
            "metadata": dict(request.metadata),
            "plan_group": request.plan_group,
            "max_quantity": request.max_quantity,
            "addons": list(request.addons),
        }
        for optional in (
            "description",
            "license_key_activations_limit",
            "license_key_activation_message",
        ):
            if request.HasField(optional):
                fields[optional] = getattr(request, optional)
        if request.HasField("license_key_duration"):
            fields["license_key_duration"] = _duration(request.license_key_duration)
        created = await self._service.create_product(
            *scope(request),
            fields,
            actor=actor(request),
        )
        return product_to_proto(created)

    async def GetProduct(
        self, request: products_pb2.GetProductRequest, context: Context
    ) -> products_pb2.Product:
        """One product of the calling business (archived ones too)."""
        found = await self._service.get_product(*scope(request), request.product_id)
        return product_to_proto(found)

    async def ListProducts(
        self, request: products_pb2.ListProductsRequest, context: Context
    ) -> products_pb2.ListProductsResponse:
        """A page of the calling business's products, newest first."""
        found = await self._service.list_products(
            *scope(request),
            archived=request.archived,
            recurring=request.recurring if request.HasField("recurring") else None,
            page=make_page(request.page_size, request.page_number),
        )
        return products_pb2.ListProductsResponse(products=[product_to_proto(p) for p in found])

    async def UpdateProduct(
        self, request: products_pb2.UpdateProductRequest, context: Context
    ) -> products_pb2.Product:
        """Change the fields set (and clear the fields named in ``cleared``)."""
        changes: dict[str, Any] = {}
        for optional in (
            "name",
            "description",
            "tax_category",
            "license_key_enabled",
            "license_key_activations_limit",
            "license_key_activation_message",
            "plan_group",
            "max_quantity",
        ):
            if request.HasField(optional):
                changes[optional] = getattr(request, optional)
        if request.HasField("price"):
            changes["price"] = price_from_proto(request.price)
        if request.HasField("license_key_duration"):
            changes["license_key_duration"] = _duration(request.license_key_duration)
        if request.HasField("metadata"):
            changes["metadata"] = dict(request.metadata.values)
        if request.HasField("addons"):
            changes["addons"] = list(request.addons.addon_ids)
        PRODUCT.clear(changes, request.cleared)
        updated = await self._service.update_product(
            *scope(request),
            request.product_id,
            changes,
            actor=actor(request),
        )
        return product_to_proto(updated)

    async def ArchiveProduct(
        self, request: products_pb2.ArchiveProductRequest, context: Context
    ) -> products_pb2.Product:
        """No longer offered; existing subscriptions are not touched."""
        found = await set_archived(self._service, request, request.product_id, archived=True)
        return product_to_proto(found)

    async def UnarchiveProduct(
        self, request: products_pb2.ArchiveProductRequest, context: Context
    ) -> products_pb2.Product:
        """Offered again."""
        found = await set_archived(self._service, request, request.product_id, archived=False)
        return product_to_proto(found)
