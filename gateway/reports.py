"""The desk's numbers in Partner API v1 (GET /v1/reports/kpis): the KPI report of a period, grouped or not."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Principal
from gateway.bodies import Money
from gateway.routing import ADMIN, COMMON, backends, problem_responses, scoped
from orderdesk.v1 import orders_pb2

# --- bodies ------------------------------------------------------------------------------
Rate = Annotated[float | None, Field(description="a share from 0 to 1; null when its denominator is 0")]


def _rate(message, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


class KpiMoney(BaseModel):
    currency: str
    amount: Money


class KpiHeadline(BaseModel):
    key: str = Field(
        description='the group: "" for the whole period, else a day (2026-11-26), ISO week (2026-W48), '
        "month (2026-11), customer id or channel"
    )
    orders_received: int
    order_value: list[KpiMoney] = Field(description="sum of the received orders' totals, per currency")
    lines_first_allocated: int
    lines_filled: int
    units_first_allocated: int
    units_filled: int
    line_fill_rate: Rate
    unit_fill_rate: Rate
    orders_delivered: int
    orders_on_time: int
    on_time_rate: Rate
    orders_cancelled: int
    cancellation_rate: Rate
    orders_held: int
    hold_rate: Rate
    orders_late: int = Field(
        0, description="orders that became late in the period: their promised day ended before they completed"
    )
    orders_warned: int = Field(
        0, description="of those, flagged at risk by the promise watch at least a day before they were late"
    )
    warned_before_late_rate: Rate = Field(
        None, description="orders_warned / orders_late; null without late orders"
    )

    @classmethod
    def from_proto(cls, h: orders_pb2.KpiHeadline) -> KpiHeadline:
        return cls(
            key=h.key,
            orders_received=h.orders_received,
            order_value=[KpiMoney(currency=m.currency, amount=m.amount) for m in h.order_value],
            lines_first_allocated=h.lines_first_allocated,
            lines_filled=h.lines_filled,
            units_first_allocated=h.units_first_allocated,
            units_filled=h.units_filled,
            line_fill_rate=_rate(h, "line_fill_rate"),
            unit_fill_rate=_rate(h, "unit_fill_rate"),
            orders_delivered=h.orders_delivered,
            orders_on_time=h.orders_on_time,
            on_time_rate=_rate(h, "on_time_rate"),
            orders_cancelled=h.orders_cancelled,
            cancellation_rate=_rate(h, "cancellation_rate"),
            orders_held=h.orders_held,
            hold_rate=_rate(h, "hold_rate"),
            orders_late=h.orders_late,
            orders_warned=h.orders_warned,
            warned_before_late_rate=_rate(h, "warned_before_late_rate"),
        )


class KpiCycleTime(BaseModel):
    stage: Literal[
        "received_to_confirmed", "confirmed_to_shipped", "shipped_to_delivered", "received_to_delivered"
    ]
    count: int
    average_seconds: float | None
    p90_seconds: float | None = Field(description="nearest-rank 90th percentile; null without samples")


class KpiReasonCount(BaseModel):
    reason: str
    orders: int
    units: int


class KpiSkuRate(BaseModel):
    sku: str
    units: int = Field(description="cancelled or returned units")
    base_units: int = Field(description="ordered units (cancellations) or delivered units (returns)")
    rate: Rate


class KpiSkuSales(BaseModel):
    sku: str
    currency: str
    units: int
    value: Money


def _reasons(rows) -> list[KpiReasonCount]:
    return [KpiReasonCount(reason=x.reason, orders=x.orders, units=x.units) for x in rows]


def _sku_rates(rows) -> list[KpiSkuRate]:
    return [
        KpiSkuRate(sku=x.sku, units=x.units, base_units=x.base_units, rate=_rate(x, "rate")) for x in rows
    ]


def _sales(rows) -> list[KpiSkuSales]:
    return [KpiSkuSales(sku=x.sku, currency=x.currency, units=x.units, value=x.value) for x in rows]


class KpiReportOut(BaseModel):
    from_: dt.datetime = Field(alias="from", description="start of the period (included), UTC")
    to: dt.datetime = Field(description="end of the period (excluded), UTC")
    group_by: str
    total: KpiHeadline
    groups: list[KpiHeadline]
    cycle_times: list[KpiCycleTime]
    cancellations_by_reason: list[KpiReasonCount]
    cancellations_by_sku: list[KpiSkuRate]
    holds_by_reason: list[KpiReasonCount]
    best_sellers: list[KpiSkuSales]
    slow_sellers: list[KpiSkuSales] = Field(
        description="SKUs ever ordered that sold nothing in the period first, then the lowest sellers"
    )
    returns_by_sku: list[KpiSkuRate]
    returns_by_reason: list[KpiReasonCount]
    orders_at_risk_now: int = Field(
        0,
        description="open orders the promise watch sees at risk at the time of the report (not the period's)",
    )
    at_risk_now: list[KpiReasonCount] = Field(
        [], description="the same per risk code (`reason`, `orders`); an order with two risks counts in both"
    )

    exchanges_by_sku: list[KpiSkuRate] = Field(
        [], description="units exchanged per SKU, rate of the units delivered in the period"
    )
    exchanges_by_reason: list[KpiReasonCount] = Field([], description="units exchanged by the return reason")
    claims_by_sku: list[KpiSkuRate] = Field(
        [], description="units claimed per SKU, rate of the units delivered in the period"
    )
    claims_by_reason: list[KpiReasonCount] = Field(
        [], description="units claimed by the claim's reason: missing_items | wrong_item | damaged_in_transit"
    )

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @classmethod
    def from_proto(cls, r: orders_pb2.KpiReport) -> KpiReportOut:
        return cls(
            **{"from": getattr(r, "from")},
            to=r.to,
            group_by=r.group_by,
            total=KpiHeadline.from_proto(r.total),
            groups=[KpiHeadline.from_proto(g) for g in r.groups],
            cycle_times=[
                KpiCycleTime(
                    stage=c.stage,
                    count=c.count,
                    average_seconds=_rate(c, "average_seconds"),
                    p90_seconds=_rate(c, "p90_seconds"),
                )
                for c in r.cycle_times
            ],
            cancellations_by_reason=_reasons(r.cancellations_by_reason),
            cancellations_by_sku=_sku_rates(r.cancellations_by_sku),
            holds_by_reason=_reasons(r.holds_by_reason),
            best_sellers=_sales(r.best_sellers),
            slow_sellers=_sales(r.slow_sellers),
            returns_by_sku=_sku_rates(r.returns_by_sku),
            returns_by_reason=_reasons(r.returns_by_reason),
            orders_at_risk_now=r.orders_at_risk_now,
            at_risk_now=_reasons(r.at_risk_now),
            exchanges_by_sku=_sku_rates(r.exchanges_by_sku),
            exchanges_by_reason=_reasons(r.exchanges_by_reason),
            claims_by_sku=_sku_rates(r.claims_by_sku),
            claims_by_reason=_reasons(r.claims_by_reason),
        )


# --- routes ------------------------------------------------------------------------------
router = APIRouter()


@router.get(
    "/v1/reports/kpis",
    response_model=KpiReportOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON),
    summary="The desk's numbers for a period: volume, value, fill, on-time, cancellations, holds, cycle "
    "times, sellers, returns (admin; formulas in the README)",
)
async def kpi_report(
    request: Request,
    from_: Annotated[
        str,
        Query(
            alias="from",
            max_length=40,
            description="YYYY-MM-DD or RFC 3339 (included); default: 30 days before `to`; "
            "a period of at most 366 days (longer: 422)",
        ),
    ] = "",
    to: Annotated[
        str,
        Query(
            max_length=40, description="YYYY-MM-DD (that day included) or RFC 3339 (excluded); default: now"
        ),
    ] = "",
    group_by: Annotated[
        str, Query(max_length=16, description="day | week | month | customer | channel")
    ] = "",
    who: Principal = scoped(ADMIN),
):
    services = backends(request)
    report = await services.call(
        services.orders.GetKpiReport, orders_pb2.KpiReportRequest(**{"from": from_}, to=to, group_by=group_by)
    )
    return KpiReportOut.from_proto(report)
