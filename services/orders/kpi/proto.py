"""The KPI report (kpi.rules.KpiReport) as protobuf: rates absent (not 0) when undefined."""

from __future__ import annotations

from orderdesk.v1 import orders_pb2
from services.orders.kpi.rules import Headline, KpiReport, ReasonCount, SkuRate, SkuSales


def _optional(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def headline_to_proto(h: Headline) -> orders_pb2.KpiHeadline:
    return orders_pb2.KpiHeadline(
        key=h.key,
        orders_received=h.orders_received,
        order_value=[
            orders_pb2.KpiMoney(currency=c, amount=str(a)) for c, a in sorted(h.order_value.items())
        ],
        lines_first_allocated=h.lines_first_allocated,
        lines_filled=h.lines_filled,
        units_first_allocated=h.units_first_allocated,
        units_filled=h.units_filled,
        orders_delivered=h.orders_delivered,
        orders_on_time=h.orders_on_time,
        orders_cancelled=h.orders_cancelled,
        orders_held=h.orders_held,
        orders_late=h.orders_late,
        orders_warned=h.orders_warned,
        **_optional(
            line_fill_rate=h.line_fill_rate,
            unit_fill_rate=h.unit_fill_rate,
            on_time_rate=h.on_time_rate,
            cancellation_rate=h.cancellation_rate,
            hold_rate=h.hold_rate,
            warned_before_late_rate=h.warned_before_late_rate,
        ),
    )


def _reasons(rows: list[ReasonCount]) -> list[orders_pb2.KpiReasonCount]:
    return [orders_pb2.KpiReasonCount(reason=r.reason, orders=r.orders, units=r.units) for r in rows]


def _rates(rows: list[SkuRate]) -> list[orders_pb2.KpiSkuRate]:
    return [
        orders_pb2.KpiSkuRate(sku=r.sku, units=r.units, base_units=r.base_units, **_optional(rate=r.rate))
        for r in rows
    ]


def _sales(rows: list[SkuSales]) -> list[orders_pb2.KpiSkuSales]:
    return [
        orders_pb2.KpiSkuSales(sku=s.sku, currency=s.currency, units=s.units, value=str(s.value))
        for s in rows
    ]


def report_to_proto(report: KpiReport) -> orders_pb2.KpiReport:
    p = report.period
    return orders_pb2.KpiReport(
        **{
            "from": p.start.isoformat().replace("+00:00", "Z"),
            "to": p.end.isoformat().replace("+00:00", "Z"),
        },
        group_by=p.group_by,
        total=headline_to_proto(report.total),
        groups=[headline_to_proto(g) for g in report.groups],
        cycle_times=[
            orders_pb2.KpiCycleTime(
                stage=c.stage,
                count=c.count,
                **_optional(average_seconds=c.average_seconds, p90_seconds=c.p90_seconds),
            )
            for c in report.cycle_times
        ],
        cancellations_by_reason=_reasons(report.cancellations_by_reason),
        cancellations_by_sku=_rates(report.cancellations_by_sku),
        holds_by_reason=_reasons(report.holds_by_reason),
        best_sellers=_sales(report.best_sellers),
        slow_sellers=_sales(report.slow_sellers),
        returns_by_sku=_rates(report.returns_by_sku),
        returns_by_reason=_reasons(report.returns_by_reason),
        exchanges_by_sku=_rates(report.exchanges_by_sku),
        exchanges_by_reason=_reasons(report.exchanges_by_reason),
        claims_by_sku=_rates(report.claims_by_sku),
        claims_by_reason=_reasons(report.claims_by_reason),
        orders_at_risk_now=report.orders_at_risk_now,
        at_risk_now=_reasons(report.at_risk_now),
    )
