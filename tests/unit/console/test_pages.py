"""Pages rendered on their own (no server): the refusal page names what an action needs, in each language."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from console import i18n, web
from orderdesk import roles


def render(template: str, locale: str = "en", **context) -> str:
    token = i18n.current.set(locale)
    request = SimpleNamespace(url=SimpleNamespace(path="/orders/ORD-1/approve"))
    try:
        return web.environment.get_template(template).render(
            request=request,
            desk=None,
            csrf_token="t",
            nav=[],
            locale=locale,
            html_lang="en",
            now=None,
            **context,
        )
    finally:
        i18n.current.reset(token)


@pytest.mark.parametrize(
    ("limits", "english", "chinese"),
    [
        (
            {"USD": Decimal("5000")},
            "you need an approval limit of at least $7,500.00; yours is $5,000.00. Nothing was changed.",
            "您需要至少 US$7,500.00 的审批额度；您的额度为 US$5,000.00。",
        ),
        (
            {"EUR": Decimal("9000")},
            "you need an approval limit in USD of at least $7,500.00; your account has none in USD.",
            "您的账户没有 USD 额度",
        ),
    ],
)
def test_an_approval_beyond_the_limit_says_the_limit_it_needs(limits, english, chinese):
    refusal = roles.check_decision("approver", limits, "USD", Decimal("7500"))
    assert refusal is not None
    for locale, expected in (("en", english), ("zh_Hans", chinese)):
        page = render("errors/forbidden.html", locale, refusal=refusal, message="")
        assert expected in " ".join(page.split()), page


def test_a_missing_role_is_named_in_words():
    refusal = roles.check("clerk", roles.Permission.DECIDE_HELD_ORDERS)
    page = render("errors/forbidden.html", refusal=refusal, message="")
    assert "To approve or reject held orders you need one of these roles: Approver." in page
    page = render("errors/forbidden.html", "zh_Hans", refusal=refusal, message="")
    assert "要批准或拒绝挂起的订单，您需要以下角色之一：审批人。" in page


def test_a_forged_form_says_nothing_was_changed():
    with pytest.raises(web.Forbidden) as refused:
        web.check_csrf("forged", "the-session-token")
    page = render("errors/forbidden.html", "zh_Hans", refusal=None, message=refused.value.message)
    assert "此表单已过期或并非来自本控制台，因此未做任何更改。" in page
    with pytest.raises(web.Forbidden):
        web.check_csrf("", "")  # no token on either side is no proof either


def test_the_pager_keeps_the_query_and_encodes_the_cursor():
    page = web.environment.from_string(
        '{% import "_lists.html" as lists with context %}'
        '{{ lists.pager("/search", "abc+/=", false, {"q": "PO 4711"}) }}'
    ).render()
    assert 'href="/search?q=PO+4711"' in page  # the first page: the query without a cursor
    assert 'href="/search?q=PO+4711&amp;cursor=abc%2B%2F%3D"' in page
    last = web.environment.from_string(
        '{% import "_lists.html" as lists with context %}{{ lists.pager("/", "", true) }}'
    ).render()
    assert "href" not in last


def test_every_call_made_for_a_person_names_them_and_their_role():
    from console.store import Account
    from orderdesk import actors

    account = Account(
        7, "ann@acme.example", "Ann", "approver", {"USD": Decimal("5000")}, "", False, 0, None, None
    )
    desk = web.Desk(account, "token")
    actor = desk.actor("agreed by phone")
    assert (actor.id, actor.reason) == ("desk:ann@acme.example (approver)", "agreed by phone")
    assert actors.parse(actor.id) == actors.Who("desk", "ann@acme.example", role="approver")
    desk.check_decision("USD", "4999.99")
    with pytest.raises(web.Forbidden) as refused:
        desk.check_decision("USD", "5000.01")
    assert refused.value.refusal.limit == Decimal("5000")
