"""The ship-to and the contacts: the address an order goes to (given, or the customer's own),
whether the desk can reach the buyer and the carrier the consignee, and whether the address
is complete and plausible for its country (hold reasons contact_missing, ship_to_incomplete,
country_unknown, postal_code_invalid)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from orderdesk.domain import ADDRESS_FIELDS, REQUIRED_ADDRESS_FIELDS, address_dict
from orderdesk.masterdata import Customer
from services.intake.domain.countries import (
    COUNTRIES_WITHOUT_POSTAL_CODES,
    ISO_COUNTRIES,
    POSTAL_CODE_HINTS,
    postal_code_valid,
)
from services.intake.domain.submission import Reason

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE_PUNCTUATION = re.compile(r"[\s\-./()]")


def ship_to(given: Mapping[str, str], customer: Customer) -> dict[str, str]:
    """The address as given (country upper-cased), or the customer's default when none is given."""
    if any(given.get(f) for f in ADDRESS_FIELDS):
        address = address_dict(given)
        address["country"] = address["country"].upper()
        return address
    return {
        "name": customer.name,
        "line1": customer.ship_to_line1,
        "city": customer.ship_to_city,
        "postal_code": customer.ship_to_postal_code,
        "country": customer.ship_to_country,
        "phone": customer.phone,
    }


def plausible_email(text: str) -> bool:
    return bool(_EMAIL.fullmatch(text.strip()))


def plausible_phone(text: str) -> bool:
    """An optional leading +, then 6 to 15 digits (E.164 allows 15) with spaces, dashes, dots, brackets."""
    digits = _PHONE_PUNCTUATION.sub("", text.strip())
    digits = digits[1:] if digits.startswith("+") else digits
    return digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 15


def contact_reasons(customer: Customer, address: Mapping[str, str]) -> list[Reason]:
    """The desk must be able to reach the buyer (e-mail) and the carrier the consignee (phone)."""
    reasons = []
    if not plausible_email(customer.email):
        what = f"{customer.email!r} is not an e-mail address" if customer.email else "no e-mail address"
        reasons.append(
            Reason("contact_missing", f"customer {customer.customer_id} has {what}", "customer.email")
        )
    phone = address.get("phone") or customer.phone  # the customer's phone when the ship-to has none
    if not plausible_phone(phone):
        what = f"{phone!r} is not a phone number" if phone else "no phone number"
        reasons.append(Reason("contact_missing", f"the delivery has {what} for the carrier", "ship_to.phone"))
    return reasons


def address_reasons(address: Mapping[str, str]) -> list[Reason]:
    """Complete and plausible: the parts a carrier needs, a known country, its postal code format."""
    reasons = []
    country = address.get("country", "").strip().upper()
    for f in REQUIRED_ADDRESS_FIELDS:
        if not address.get(f, "").strip():
            reasons.append(
                Reason(
                    "ship_to_incomplete", f"the delivery address has no {f.replace('_', ' ')}", f"ship_to.{f}"
                )
            )
    if country and country not in ISO_COUNTRIES:
        reasons.append(
            Reason("country_unknown", f"{country!r} is not an ISO 3166-1 country code", "ship_to.country")
        )
        return reasons  # the postal code cannot be judged without a country
    postal_code = address.get("postal_code", "").strip()
    if not postal_code:
        if country and country not in COUNTRIES_WITHOUT_POSTAL_CODES:
            reasons.append(
                Reason(
                    "ship_to_incomplete", f"deliveries to {country} need a postal code", "ship_to.postal_code"
                )
            )
    elif country and not postal_code_valid(country, postal_code):
        reasons.append(
            Reason(
                "postal_code_invalid",
                f"{postal_code!r} is not a postal code of {country} ({POSTAL_CODE_HINTS[country]})",
                "ship_to.postal_code",
            )
        )
    return reasons
