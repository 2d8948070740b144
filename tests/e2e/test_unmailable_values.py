"""Values that could never be mailed are refused where they enter (issue 9.6).

The merchant API and the portal's profile form (auth owns the rule; the
operators' ``portalctl`` is covered next to auth, in services/auth/tests).
"""

from __future__ import annotations

import httpx
import pytest
from devstack import Stack
from devstack.portal import PortalBusiness, PortalHttp, business_cookie, unique_email
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("name", "Ada\r\nBcc: victim@example.com", "line breaks"),
        ("name", "Ada\x00", "control characters"),
        ("email", "jöhn@example.com", "ASCII"),
    ],
)
async def test_the_merchant_api_refuses_unmailable_customers(
    stack: Stack, shop: PortalBusiness, field: str, value: str, says: str
) -> None:
    body = {"email": unique_email("unmailable"), "name": "Ada", field: value}
    headers = {"Authorization": f"Bearer {shop.test_key}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers) as client:
        before = (await client.get("/customers", params={"page_size": 100})).json()["items"]
        response = await client.post("/customers", json=body)
        after = (await client.get("/customers", params={"page_size": 100})).json()["items"]
    assert response.status_code == 422, response.text
    assert response.headers["x-should-retry"] == "false"
    problem = response.json()
    assert field in problem["detail"] and says in problem["detail"]
    assert len(after) == len(before)


async def test_the_profile_form_refuses_a_name_with_a_nul(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, http: PortalHttp
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("nul"), name="Ada Byron")
    link = (await shop_sdk.customers.customer_portal.create(customer.customer_id)).link
    cookies = {
        business_cookie("test", shop.business_id): await http.sign_in_with_link(
            link, "test", shop.business_id
        )
    }
    profile_url = f"{stack.portal_urls.test}/b/{shop.business_id}/profile"
    profile = await http.get(profile_url, cookies=cookies)
    refused = await http.request(
        "POST",
        profile_url,
        cookies=cookies,
        form={"csrf_token": profile.csrf_token(), "name": "Ada\x00Byron", "phone_number": ""},
    )
    assert refused.status == 422
    assert 'aria-invalid="true"' in refused.text
    assert (await shop_sdk.customers.retrieve(customer.customer_id)).name == "Ada Byron"
