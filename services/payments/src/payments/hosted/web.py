"""The hosted payment page's HTTP listener (aiohttp): card form, 3-D Secure page, assets.

Works without JavaScript. Card numbers and CVCs arrive in a POST body and are
never logged (the access log writes the route template and status only, never
the path, query or body), never echoed back into the page, never put in an
error message. Every form carries a CSRF token bound to its session (or
challenge) id; pages send a strict CSP (no inline script or style) and
``Referrer-Policy: no-referrer`` so the session id in the URL does not leak.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web
from billing_kit.clock import Clock
from billing_kit.errors import FailedPrecondition, NotFound

from payments.charges.models import PaymentStatus, StoredPayment
from payments.charges.service import ChargesService
from payments.hosted.models import PaymentSession, SessionPurpose, SessionStatus
from payments.hosted.rendering import (
    PAGE,
    PageContext,
    access_log_and_headers,
    brand_css,
    branding_values,
    csrf_ok,
    csrf_token,
    message_page,
    origin_of,
    render,
)
from payments.hosted.service import CardRefused, HostedPageService, with_query
from payments.hosted.texts import PROBLEM_TEXT, Texts, format_amount, pick_language
from payments.processor.cards import read_card

HERE = Path(__file__).parent


def _closed_page(request: web.Request, session: PaymentSession, language: str) -> web.Response:
    if session.status is SessionStatus.EXPIRED:
        return message_page(
            request,
            session,
            language,
            410,
            "Page expired",
            "This payment page has expired. Please start again.",
            session.return_url,
        )
    return message_page(
        request,
        session,
        language,
        409,
        "Already done",
        "This payment page was already used.",
        session.return_url,
    )


async def _session_or_404(request: web.Request) -> PaymentSession | web.Response:
    language = pick_language("", request.headers.get("Accept-Language", ""))
    try:
        return await request.app[PAGE].hosted.open_session(request.match_info["session_id"])
    except NotFound:
        return message_page(
            request,
            None,
            language,
            404,
            "Page not found",
            "This payment page does not exist or has expired.",
        )


def _form_page(
    request: web.Request,
    session: PaymentSession,
    language: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    form_error: str = "",
) -> web.Response:
    page = request.app[PAGE]
    gettext = page.texts.for_language(language).gettext
    paying = session.purpose is SessionPurpose.PAY
    amount_text = format_amount(session.amount, session.currency, language) if paying else ""
    return render(
        request,
        "card_form.html",
        language=language,
        status=status,
        form_target=origin_of(session.return_url),
        heading=gettext("Pay") if paying else gettext("Add a card"),
        submit_label=gettext("Pay %(amount)s") % {"amount": amount_text}
        if paying
        else gettext("Save card"),
        amount_text=amount_text,
        action=f"{page.base_path}/pay/{session.session_id}",
        csrf_token=csrf_token(page.secret, "session", session.session_id),
        errors=errors or {},
        values=values or {},
        form_error=form_error,
        cancel_url=with_query(
            session.return_url, payment_session_id=session.session_id, status="cancelled"
        ),
        **branding_values(session),
    )


async def show_card_form(request: web.Request) -> web.StreamResponse:
    """``GET /pay/{session_id}``: the card form."""
    session = await _session_or_404(request)
    if isinstance(session, web.Response):
        return session
    language = pick_language(session.locale, request.headers.get("Accept-Language", ""))
    if session.status is SessionStatus.CHARGED and session.payment_id:
        # A PAY session whose charge waits for 3-D Secure: back to its challenge.
        payment = await request.app[PAGE].charges.get_payment(
            session.business_id, session.mode, session.payment_id
        )
        if payment.challenge_url:
            raise web.HTTPSeeOther(location=payment.challenge_url)
    if session.status is not SessionStatus.OPEN:
        return _closed_page(request, session, language)
    return _form_page(request, session, language)


async def submit_card_form(request: web.Request) -> web.StreamResponse:
    """``POST /pay/{session_id}``: check the fields, then save (and charge) the card."""
    page = request.app[PAGE]
    session = await _session_or_404(request)
    if isinstance(session, web.Response):
        return session
    language = pick_language(session.locale, request.headers.get("Accept-Language", ""))
    if session.status is not SessionStatus.OPEN:
        return _closed_page(request, session, language)
    form = await request.post()
    gettext = page.texts.for_language(language).gettext
    if not csrf_ok(page.secret, "session", session.session_id, form.get("csrf_token")):
        return _form_page(
            request,
            session,
            language,
            status=403,
            form_error=gettext("This form expired. Please try again."),
        )
    fields = {
        name: str(form.get(name, "")) for name in ("cc-name", "cc-number", "cc-exp", "cc-csc")
    }
    # Only what is safe to show again goes back into the page: never the number or CVC.
    keep = {"cc-name": fields["cc-name"], "cc-exp": fields["cc-exp"]}
    card = read_card(
        number=fields["cc-number"],
        expiry=fields["cc-exp"],
        cvc=fields["cc-csc"],
        holder_name=fields["cc-name"],
        now=page.clock.now(),
    )
    del fields, form
    if isinstance(card, dict):
        errors = {name: gettext(PROBLEM_TEXT[problem]) for name, problem in card.items()}
        return _form_page(request, session, language, status=422, errors=errors, values=keep)
    try:
        outcome = await page.hosted.submit_card(session.session_id, card)
    except FailedPrecondition:
        return _closed_page(request, await page.hosted.open_session(session.session_id), language)
    finally:
        del card
    if isinstance(outcome, CardRefused):
        return _form_page(
            request, session, language, status=402, values=keep, form_error=gettext(outcome.message)
        )
    raise web.HTTPSeeOther(location=outcome)


async def _session_of(request: web.Request, payment: StoredPayment) -> PaymentSession | None:
    if not payment.session_id:
        return None
    try:
        return await request.app[PAGE].hosted.open_session(payment.session_id)
    except NotFound:
        return None


def _done_url(payment: StoredPayment) -> str:
    if not payment.return_url:
        return ""
    return with_query(payment.return_url, payment_id=payment.payment_id, status=str(payment.status))


async def show_challenge(request: web.Request) -> web.StreamResponse:
    """``GET /challenge/{challenge_id}``: the test 3-D Secure page (Complete / Fail)."""
    page = request.app[PAGE]
    challenge_id = request.match_info["challenge_id"]
    accept = request.headers.get("Accept-Language", "")
    try:
        payment = await page.charges.challenge(challenge_id)
    except NotFound:
        return message_page(
            request,
            None,
            pick_language("", accept),
            404,
            "Page not found",
            "This payment page does not exist or has expired.",
        )
    session = await _session_of(request, payment)
    language = pick_language(session.locale if session else "", accept)
    if payment.status is not PaymentStatus.REQUIRES_CUSTOMER_ACTION:
        return message_page(
            request,
            session,
            language,
            409,
            "Already done",
            "This payment was already confirmed or refused.",
            _done_url(payment),
        )
    return render(
        request,
        "challenge.html",
        language=language,
        form_target=origin_of(payment.return_url),
        action=f"{page.base_path}/challenge/{challenge_id}",
        csrf_token=csrf_token(page.secret, "challenge", challenge_id),
        amount_text=format_amount(payment.total_amount, payment.currency, language),
        last4=payment.card_last_four,
        **(branding_values(session) | {"test_mode": payment.mode == "test"}),
    )


async def submit_challenge(request: web.Request) -> web.StreamResponse:
    """``POST /challenge/{challenge_id}``: apply Complete or Fail, then return to the caller."""
    page = request.app[PAGE]
    challenge_id = request.match_info["challenge_id"]
    accept = request.headers.get("Accept-Language", "")
    form = await request.post()
    language = pick_language("", accept)
    if not csrf_ok(page.secret, "challenge", challenge_id, form.get("csrf_token")):
        return message_page(
            request, None, language, 403, "Please try again", "This form expired. Please try again."
        )
    action = form.get("action")
    if action not in ("complete", "fail"):
        return message_page(
            request, None, language, 422, "Please try again", "Choose Complete or Fail."
        )
    try:
        payment = await page.charges.complete_challenge(challenge_id, approved=action == "complete")
    except NotFound:
        return message_page(
            request,
            None,
            language,
            404,
            "Page not found",
            "This payment page does not exist or has expired.",
        )
    except FailedPrecondition:
        return message_page(
            request,
            None,
            language,
            410,
            "Page expired",
            "This payment page has expired. Please start again.",
        )
    done = _done_url(payment)
    if done:
        raise web.HTTPSeeOther(location=done)
    session = await _session_of(request, payment)
    if payment.status is PaymentStatus.SUCCEEDED:
        return message_page(
            request,
            session,
            language,
            200,
            "Payment confirmed",
            "Thank you: your payment was confirmed.",
        )
    return message_page(
        request,
        session,
        language,
        200,
        "Payment not confirmed",
        "The payment was not confirmed with your bank.",
    )


def create_page_app(
    *,
    hosted: HostedPageService,
    charges: ChargesService,
    secret: bytes,
    clock: Clock,
    base_path: str,
) -> web.Application:
    """The page's aiohttp application; routes live under ``base_path`` (e.g. ``/hosted``)."""
    app = web.Application(middlewares=[access_log_and_headers], client_max_size=16 * 1024)
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app[PAGE] = PageContext(hosted, charges, secret, clock, base_path, Texts(), templates)
    app.router.add_get(f"{base_path}/pay/{{session_id}}", show_card_form, name="card_form")
    app.router.add_post(f"{base_path}/pay/{{session_id}}", submit_card_form)
    app.router.add_get(f"{base_path}/challenge/{{challenge_id}}", show_challenge, name="challenge")
    app.router.add_post(f"{base_path}/challenge/{{challenge_id}}", submit_challenge)
    app.router.add_get(f"{base_path}/brand/{{color}}.css", brand_css, name="brand_css")
    app.router.add_static(f"{base_path}/static", HERE / "static", name="static")
    return app
