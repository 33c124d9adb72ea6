"""The console's metrics (orderdesk_console_…): requests by route template and status, their duration, and
sign-ins by outcome; labels stay bounded (templates, never ids or e-mails)."""

from __future__ import annotations

from prometheus_client import REGISTRY


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_are_counted_by_route_template_and_status(console, browser_of):
    account_route = {"method": "GET", "route": "/accounts/{account_id}"}
    before = {
        "ok": sample("orderdesk_console_requests_total", **account_route, status="200"),
        "missing": sample("orderdesk_console_requests_total", **account_route, status="404"),
        "unmatched": sample(
            "orderdesk_console_requests_total", method="GET", route="unmatched", status="404"
        ),
        "timed": sample("orderdesk_console_request_duration_seconds_count", **account_route),
        "post": sample("orderdesk_console_requests_total", method="POST", route="/signin", status="303"),
    }
    browser = await browser_of(console)
    await browser.sign_in("admin")
    assert (await browser.get("/accounts/1"))[0] == 200
    assert (await browser.get("/accounts/2"))[0] == 200
    assert (await browser.get("/accounts/999999"))[0] == 404
    assert (await browser.get("/no/such/page/42"))[0] == 404
    assert sample("orderdesk_console_requests_total", **account_route, status="200") == before["ok"] + 2
    assert sample("orderdesk_console_requests_total", **account_route, status="404") == before["missing"] + 1
    assert (
        sample("orderdesk_console_requests_total", method="GET", route="unmatched", status="404")
        == before["unmatched"] + 1
    )
    assert sample("orderdesk_console_request_duration_seconds_count", **account_route) == before["timed"] + 3
    assert sample("orderdesk_console_requests_total", method="POST", route="/signin", status="303") == (
        before["post"] + 1
    )
    routes = {
        s.labels["route"]
        for metric in REGISTRY.collect()
        if metric.name == "orderdesk_console_requests"
        for s in metric.samples
    }
    assert not any(any(ch.isdigit() for ch in route) or "@" in route for route in routes), routes


async def test_sign_ins_are_counted_by_outcome(start_console, browser_of):
    console = await start_console(signin_account_limit=2, lock_after=100)
    outcomes = ("signed_in", "failed", "throttled", "disabled")
    before = {o: sample("orderdesk_console_signins_total", outcome=o) for o in outcomes}
    await (await browser_of(console)).sign_in("viewer")
    browser = await browser_of(console)
    await browser.sign_in("clerk", "wrong-password-1")
    await browser.sign_in("clerk", "wrong-password-2")
    await browser.sign_in("clerk")  # throttled
    after = {o: sample("orderdesk_console_signins_total", outcome=o) for o in outcomes}
    assert {o: after[o] - before[o] for o in outcomes} == {
        "signed_in": 1,
        "failed": 2,
        "throttled": 1,
        "disabled": 0,
    }


async def test_every_page_says_the_consoles_time_in_server_timing(console, browser_of):
    """`make bench` (bench/console.py) reads the console's own time from it: a duration, nothing else."""
    browser = await browser_of(console)
    await browser.sign_in("admin")
    for path in ("/accounts/1", "/no/such/page/42"):
        headers = (await browser.get(path))[2]
        name, duration = headers["Server-Timing"].split(";dur=")
        assert name == "app" and 0 < float(duration) < 60_000
