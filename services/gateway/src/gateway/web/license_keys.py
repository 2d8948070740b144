"""License keys: every key of the customer, with its instances, and deactivating one.

A page costs two calls to the subscriptions service (keys, instances), each
scoped to the customer, so another customer's key never reaches the page and
another customer's instance id is "not found" (404) on the confirm page and
its form alike. Deactivating asks for a confirmation first (its own page, so
it works without JavaScript) and carries the CSRF token.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import licenses_pb2
from billing_kit.errors import NotFound

from gateway.keys import LICENSES_STUB
from gateway.web import billing_views as views
from gateway.web.audiences import UnifiedContext, unified_page
from gateway.web.billing_forms import valid_id
from gateway.web.billing_scope import Account, unified_accounts, unified_shell
from gateway.web.forms import read_form
from gateway.web.i18n import N_
from gateway.web.rendering import error_page, redirect, render
from gateway.web.security import CSRF_FIELD, tokens_match

PAGE_SIZE = 100
NOTICES = ("deactivated",)
_KEY_BADGES: dict[str, tuple[str, str]] = {
    "active": (N_("Active"), "success"),
    "expired": (N_("Expired"), "muted"),
    "disabled": (N_("Disabled"), "danger"),
}


@dataclass(slots=True)
class InstanceView:
    """One activation as its row shows it."""

    instance_id: str
    name: str
    activated: str
    deactivate_href: str


@dataclass(slots=True)
class KeyView:
    """One key as its card shows it."""

    license_key_id: str
    product_name: str
    key: str
    status: dict[str, str]
    expires: str
    used: int
    limit: int | None
    activation_message: str
    instances: list[InstanceView] = field(default_factory=list)
    business: Any = None


def key_view(key: Any, instances: list[InstanceView], business: Any = None) -> KeyView:
    """A ``licenses.v1.LicenseKey`` as the page shows it."""
    return KeyView(
        license_key_id=key.license_key_id,
        product_name=key.product_name or key.product_id,
        key=key.key,
        status=views.badge(key.status, _KEY_BADGES),
        expires=views.day(views.timestamp(key, "expires_at")),
        used=key.instances_count,
        limit=key.activations_limit if key.HasField("activations_limit") else None,
        activation_message=key.activation_message,
        instances=instances,
        business=business,
    )


async def _keys_and_instances(
    request: web.Request,
    mode: common_pb2.Mode.ValueType,
    business_id: str,
    customer_ids: list[str],
) -> tuple[list[Any], list[Any]]:
    stub = request.app[LICENSES_STUB]
    keys, instances = await asyncio.gather(
        stub.ListLicenseKeys(
            licenses_pb2.ListLicenseKeysRequest(
                business_id=business_id, mode=mode, customer_ids=customer_ids, page_size=PAGE_SIZE
            )
        ),
        stub.ListLicenseKeyInstances(
            licenses_pb2.ListLicenseKeyInstancesRequest(
                business_id=business_id, mode=mode, customer_ids=customer_ids, page_size=PAGE_SIZE
            )
        ),
    )
    return list(keys.license_keys), list(instances.instances)


def _grouped(instances: list[Any], href: Any) -> dict[str, list[InstanceView]]:
    out: dict[str, list[InstanceView]] = {}
    for instance in instances:
        out.setdefault(instance.license_key_id, []).append(
            InstanceView(
                instance_id=instance.instance_id,
                name=instance.name,
                activated=views.day(views.timestamp(instance, "created_at")),
                deactivate_href=href(instance),
            )
        )
    return out


async def license_keys_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/license-keys``: the customer's keys, each with its instances."""
    keys, instances = await _keys_and_instances(
        request, account.mode, account.business_id, [account.customer_id]
    )
    by_key = _grouped(
        instances,
        lambda i: account.path(f"license-keys/instances/{i.instance_id}/deactivate"),
    )
    rows = [key_view(k, by_key.get(k.license_key_id, [])) for k in keys]
    notice = request.query.get("done")
    return render(
        request,
        "license_keys.html",
        account.values(keys=rows, notice=notice if notice in NOTICES else None, unified_list=False),
    )


def _instance_id(request: web.Request) -> str:
    instance_id = request.match_info["instance_id"]
    if not valid_id(instance_id):
        raise web.HTTPNotFound()
    return instance_id


async def _own_instance(request: web.Request, account: Account, instance_id: str) -> Any:
    try:
        return await request.app[LICENSES_STUB].GetLicenseKeyInstance(
            licenses_pb2.GetLicenseKeyInstanceRequest(
                business_id=account.business_id,
                mode=account.mode,
                instance_id=instance_id,
                customer_id=account.customer_id,
            )
        )
    except NotFound:
        raise web.HTTPNotFound() from None


def _confirm_values(account: Account, instance: Any, **more: Any) -> dict[str, Any]:
    return account.values(
        instance_name=instance.name,
        action=account.path(f"license-keys/instances/{instance.instance_id}/deactivate"),
        back_href=account.path("license-keys"),
        errors=more.pop("errors", {}),
        **more,
    )


async def deactivate_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/license-keys/instances/{id}/deactivate``: confirm before freeing the slot."""
    instance = await _own_instance(request, account, _instance_id(request))
    return render(request, "license_key_deactivate.html", _confirm_values(account, instance))


async def deactivate(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/license-keys/instances/{id}/deactivate``: remove it, back to the list."""
    instance_id = _instance_id(request)
    form = await read_form(request)
    instance = await _own_instance(request, account, instance_id)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    try:
        await request.app[LICENSES_STUB].RemoveLicenseKeyInstance(
            licenses_pb2.RemoveLicenseKeyInstanceRequest(
                business_id=account.business_id,
                mode=account.mode,
                customer_id=account.customer_id,
                instance_id=instance.instance_id,
            )
        )
    except NotFound:
        pass  # a concurrent tab removed it first: same outcome
    return redirect(account.path("license-keys?done=deactivated"))


@unified_page
async def all_license_keys(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``GET /all/license-keys``: every business's keys of the email, in one list."""
    owners = {a.customer.customer_id: a.business for a in await unified_accounts(request, context)}
    rows: list[KeyView] = []
    if owners:
        keys, instances = await _keys_and_instances(request, common_pb2.MODE_LIVE, "", list(owners))
        business_of = {k.license_key_id: k.business_id for k in keys}
        by_key = _grouped(
            instances,
            lambda i: context.site.path(
                f"/b/{business_of.get(i.license_key_id, '')}"
                f"/license-keys/instances/{i.instance_id}/deactivate"
            ),
        )
        for key in keys:
            business = owners.get(key.customer_id)
            if business is not None:
                rows.append(key_view(key, by_key.get(key.license_key_id, []), business))
    values = {
        **unified_shell(context, "license-keys"),
        "shell_template": "unified_base.html",
        "keys": rows,
        "notice": None,
        "unified_list": True,
        "brands": sorted({b.business_id for b in owners.values()}),
    }
    return render(request, "license_keys.html", values)
