"""Reports: the desk's numbers over a period, the same figures as the partner API's GET /v1/reports/kpis
(both call orders' GetKpiReport), as charts read at a glance (console/charts.py, SVG drawn here) with the
figures beside each chart as a table, and as CSV (/reports.csv, the same query).

The period is the service's to check (one rule for the API, the CLI and this page): a bad date, an end
before the start or a period over the maximum comes back as a field violation, shown beside the field.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Annotated

from babel import numbers as babel_numbers
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from console import charts, i18n, web, words
from console.i18n import N_, gettext
from console.web import Desk, FormErrors, NavEntry, requires
from orderdesk.roles import Permission
from orderdesk.v1 import orders_pb2

router = APIRouter()
NAV = NavEntry(N_("Reports"), "/reports", Permission.READ, order=70)
GROUPS = {"day": N_("Per day"), "week": N_("Per week"), "month": N_("Per month")}
FIELDS = {"from": "from", "to": "to", "group_by": "group"}  # the service's field -> the form's
REASONS = {
    "invalid_time": N_("Enter a date as YYYY-MM-DD, e.g. 2026-11-01."),
    "empty_period": N_("The end of the period must be after its start."),
    "period_too_long": N_("A report covers at most 366 days: choose a shorter period."),
    "unknown_group_by": N_("Choose per day, per week or per month."),
}
# Every figure of a headline, in the message's order: a figure added to KpiHeadline is in the CSV at once.
HEADLINE = tuple(
    f.name for f in orders_pb2.KpiHeadline.DESCRIPTOR.fields if f.name not in ("key", "order_value")
)


def _value(message, name: str):
    """A field of a report message; None for an optional one that is not set (no denominator)."""
    if message.DESCRIPTOR.fields_by_name[name].has_presence:
        return getattr(message, name) if message.HasField(name) else None
    return getattr(message, name)


# --- CSV: every figure of the report, one per row --------------------------------------------------------
def csv_rows(report: orders_pb2.KpiReport) -> list[list[str]]:
    """section, key, measure, value: the measure names and values as GET /v1/reports/kpis gives them
    (an absent rate is empty), so a spreadsheet pivots it and a program compares it."""
    rows: list[list[str]] = [["section", "key", "measure", "value"]]

    def put(section: str, key: str, measure: str, value) -> None:
        rows.append([section, key, measure, "" if value is None else str(value)])

    put("period", "", "from", getattr(report, "from"))
    put("period", "", "to", report.to)
    put("period", "", "group_by", report.group_by)
    for section, heads in (("total", [report.total]), ("group", list(report.groups))):
        for h in heads:
            for name in HEADLINE:
                put(section, h.key, name, _value(h, name))
            for money in h.order_value:
                put(section, h.key, f"order_value.{money.currency}", money.amount)
    for c in report.cycle_times:
        for name in ("count", "average_seconds", "p90_seconds"):
            put("cycle_times", c.stage, name, _value(c, name))
    for section in ("cancellations_by_reason", "holds_by_reason", "returns_by_reason"):
        for r in getattr(report, section):
            put(section, r.reason, "orders", r.orders)
            put(section, r.reason, "units", r.units)
    for section in ("cancellations_by_sku", "returns_by_sku"):
        for s in getattr(report, section):
            for name in ("units", "base_units", "rate"):
                put(section, s.sku, name, _value(s, name))
    for section in ("best_sellers", "slow_sellers"):
        for s in getattr(report, section):
            put(section, s.sku, "currency", s.currency)
            put(section, s.sku, "units", s.units)
            put(section, s.sku, "value", s.value)
    return rows


# --- the page: charts with their figures ----------------------------------------------------------------
@dataclass
class Figures:
    """One chart and the table beside it: `rows` are (row header, cells...)."""

    key: str
    heading: str
    chart: Markup
    caption: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def percent(value: float | None) -> str:
    if value is None:
        return gettext("no figure")
    return babel_numbers.format_percent(value, "#,##0.0%", locale=i18n.babel_locale())


def hours(seconds: float | None) -> str:
    if seconds is None:
        return gettext("no figure")
    return gettext(
        "%(hours)s h",
        hours=babel_numbers.format_decimal(seconds / 3600, "#,##0.0", locale=i18n.babel_locale()),
    )


def group_label(key: str, group_by: str) -> str:
    return i18n.format_date(key) if group_by == "day" and key else key


def figures(report: orders_pb2.KpiReport) -> list[Figures]:
    group_by = report.group_by
    groups = list(report.groups) or [report.total]
    label = (lambda h: group_label(h.key, group_by)) if report.groups else (lambda h: gettext("Whole period"))
    number = i18n.format_number
    made: list[Figures] = []

    def rate_series(key: str, heading: str, name: str, count: str, base: str, describes: str) -> None:
        points = [charts.Point(label(h), _value(h, name), percent(_value(h, name))) for h in groups]
        made.append(
            Figures(
                key,
                heading,
                charts.columns(heading, describes, points, share=True),
                heading,
                [gettext("Period"), heading, gettext(count), gettext(base)],
                [
                    [
                        label(h),
                        percent(_value(h, name)),
                        number(getattr(h, _COUNTS[name][0])),
                        number(getattr(h, _COUNTS[name][1])),
                    ]
                    for h in groups
                ],
            )
        )

    rate_series(
        "on-time",
        gettext("On-time rate"),
        "on_time_rate",
        N_("Delivered on time"),
        N_("Delivered"),
        gettext("Share of delivered orders delivered by their promised date, per period, 0 to 100 %."),
    )
    rate_series(
        "fill",
        gettext("Fill rate (units)"),
        "unit_fill_rate",
        N_("Units filled"),
        N_("Units first allocated"),
        gettext("Share of ordered units reserved at the order's first allocation, per period, 0 to 100 %."),
    )
    volume = [charts.Point(label(h), float(h.orders_received), number(h.orders_received)) for h in groups]
    made.append(
        Figures(
            "volume",
            gettext("Order volume"),
            charts.columns(gettext("Order volume"), gettext("Orders received per period."), volume),
            gettext("Order volume"),
            [
                gettext("Period"),
                gettext("Orders received"),
                gettext("Order value"),
                gettext("Cancelled"),
                gettext("Held"),
            ],
            [
                [
                    label(h),
                    number(h.orders_received),
                    ", ".join(i18n.format_money(m.amount, m.currency) for m in h.order_value),
                    number(h.orders_cancelled),
                    number(h.orders_held),
                ]
                for h in groups
            ],
        )
    )

    def bar_figures(key: str, heading: str, describes: str, points, columns: list[str], table) -> None:
        """A bar chart and its table under one heading (reasons, sellers, cycle times)."""
        made.append(Figures(key, heading, charts.bars(heading, describes, points), heading, columns, table))

    def reasons(key: str, heading: str, rows, words_of, describes: str) -> None:
        bar_figures(
            key,
            heading,
            describes,
            [charts.Point(words_of(r.reason), float(r.orders), number(r.orders)) for r in rows],
            [gettext("Reason"), gettext("Orders"), gettext("Units")],
            [[words_of(r.reason), number(r.orders), number(r.units)] for r in rows],
        )

    reasons(
        "cancellations",
        gettext("Cancellations by reason"),
        report.cancellations_by_reason,
        lambda code: words.label(words.CANCEL_REASONS, code),
        gettext("Orders cancelled in the period, by reason."),
    )
    reasons(
        "holds",
        gettext("Hold reasons"),
        report.holds_by_reason,
        lambda code: words.label(words.HOLD_REASONS, code),
        gettext("Orders put on hold in the period, by reason."),
    )

    def sellers(key: str, heading: str, rows, describes: str) -> None:
        bar_figures(
            key,
            heading,
            describes,
            [charts.Point(s.sku, float(s.units), number(s.units)) for s in rows],
            [gettext("SKU"), gettext("Units"), gettext("Value")],
            [
                [s.sku, number(s.units), i18n.format_money(s.value, s.currency) if s.currency else ""]
                for s in rows
            ],
        )

    sellers(
        "best",
        gettext("Best sellers"),
        report.best_sellers,
        gettext("The SKUs that sold the most units in the period."),
    )
    sellers(
        "slow",
        gettext("Slow sellers"),
        report.slow_sellers,
        gettext("SKUs ever ordered that sold nothing in the period first, then the fewest units."),
    )
    stages = list(report.cycle_times)
    bar_figures(
        "cycle",
        gettext("Cycle times"),
        gettext("Average hours from one stage of an order to the next, in the period."),
        [
            charts.Point(
                words.label(words.CYCLE_STAGES, c.stage),
                _hours_or_none(c),
                hours(_value(c, "average_seconds")),
            )
            for c in stages
        ],
        [gettext("Stage"), gettext("Orders"), gettext("Average"), gettext("90th percentile")],
        [
            [
                words.label(words.CYCLE_STAGES, c.stage),
                number(c.count),
                hours(_value(c, "average_seconds")),
                hours(_value(c, "p90_seconds")),
            ]
            for c in stages
        ],
    )
    return made


_COUNTS = {
    "on_time_rate": ("orders_on_time", "orders_delivered"),
    "unit_fill_rate": ("units_filled", "units_first_allocated"),
}


def _hours_or_none(c) -> float | None:
    seconds = _value(c, "average_seconds")
    return None if seconds is None else seconds / 3600


async def _report(request: Request, start: str, end: str, group: str):
    return await web.call(
        request,
        web.services(request).orders.GetKpiReport,
        orders_pb2.KpiReportRequest(**{"from": start}, to=end, group_by=group),
    )


def _refusal_fields(refused: web.ServiceRefusal) -> FormErrors:
    found = FormErrors()
    for path, reason in refused.reasons(FIELDS).items():
        found.fields[path] = REASONS.get(reason, refused.field_errors(FIELDS)[path])
    if not found:
        found.general = refused.message
    return found


@router.get("/reports")
async def reports(
    request: Request,
    start: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
    group: Annotated[str, Query(max_length=16)] = "day",
    desk: Desk = requires(Permission.READ),
):
    start, to, group = start.strip(), to.strip(), group.strip()
    values = {"from": start, "to": to, "group": group}
    found = FormErrors()
    if group not in GROUPS:
        found.fields["group"] = REASONS["unknown_group_by"]
    else:
        try:
            report = await _report(request, start, to, group)
        except web.ServiceRefusal as refused:
            if refused.status != 422:
                raise
            found = _refusal_fields(refused)
    if found:
        return web.render(
            request,
            "reports/index.html",
            {"values": values, "errors": found, "report": None, "figures": []},
            status=422,
        )
    query = {"from": start, "to": to, "group": group}
    return web.render(
        request,
        "reports/index.html",
        {
            "values": values,
            "errors": found,
            "report": report,
            "period_from": getattr(report, "from"),
            "figures": figures(report),
            "total": report.total,
            "csv_query": query,
            "percent": percent,
        },
    )


@router.get("/reports.csv")
async def reports_csv(
    request: Request,
    start: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
    group: Annotated[str, Query(max_length=16)] = "",
    desk: Desk = requires(Permission.READ),
):
    report = await _report(request, start.strip(), to.strip(), group.strip())
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(csv_rows(report))
    name = f"kpis_{getattr(report, 'from')[:10]}_{report.to[:10]}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
