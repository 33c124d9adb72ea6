"""Reference data about countries: the ISO 3166-1 codes intake accepts, the countries whose
addresses carry no postal code, and the postal code format of those whose format it knows."""

from __future__ import annotations

import re

ISO_COUNTRIES = frozenset(
    """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS
MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW
TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split()
)  # ISO 3166-1 alpha-2, the 249 officially assigned codes

# Countries whose addresses carry no postal code: an empty one is complete there.
COUNTRIES_WITHOUT_POSTAL_CODES = frozenset(
    "AE AG AO AW BF BI BJ BO BS BW BZ CD CF CG CI CK CM CW DJ DM ER FJ GA GD GH GM GN GQ GY HK JM KI KM KN KP LY ML "
    "MO MR MW NR NU QA RW SB SC SL SR SS ST SY TD TG TK TL TO TT TV UG VU YE ZW".split()
)

_FORMATS = {  # country: (pattern over the upper-cased code, a hint for the message)
    "US": (r"\d{5}(-\d{4})?", "5 digits or ZIP+4, e.g. 73301 or 73301-0001"),
    "CA": (r"[A-Z]\d[A-Z] ?\d[A-Z]\d", "A1A 1A1"),
    "MX": (r"\d{5}", "5 digits"),
    "BR": (r"\d{5}-?\d{3}", "NNNNN-NNN"),
    "CN": (r"\d{6}", "6 digits"),
    "JP": (r"\d{3}-?\d{4}", "NNN-NNNN"),
    "KR": (r"\d{5}", "5 digits"),
    "TW": (r"\d{3}(\d{2,3})?", "3, 5 or 6 digits"),
    "IN": (r"\d{6}", "6 digits"),
    "SG": (r"\d{6}", "6 digits"),
    "RU": (r"\d{6}", "6 digits"),
    "AU": (r"\d{4}", "4 digits"),
    "NZ": (r"\d{4}", "4 digits"),
    "ZA": (r"\d{4}", "4 digits"),
    "DE": (r"\d{5}", "5 digits"),
    "FR": (r"\d{5}", "5 digits"),
    "IT": (r"\d{5}", "5 digits"),
    "ES": (r"\d{5}", "5 digits"),
    "FI": (r"\d{5}", "5 digits"),
    "EE": (r"\d{5}", "5 digits"),
    "HR": (r"\d{5}", "5 digits"),
    "TR": (r"\d{5}", "5 digits"),
    "NL": (r"\d{4}( ?[A-Z]{2})?", "4 digits and optionally 2 letters, e.g. 3011 AB"),
    "BE": (r"\d{4}", "4 digits"),
    "LU": (r"(L-)?\d{4}", "4 digits"),
    "AT": (r"\d{4}", "4 digits"),
    "CH": (r"\d{4}", "4 digits"),
    "DK": (r"\d{4}", "4 digits"),
    "NO": (r"\d{4}", "4 digits"),
    "HU": (r"\d{4}", "4 digits"),
    "SI": (r"\d{4}", "4 digits"),
    "BG": (r"\d{4}", "4 digits"),
    "SE": (r"\d{3} ?\d{2}", "NNN NN"),
    "CZ": (r"\d{3} ?\d{2}", "NNN NN"),
    "SK": (r"\d{3} ?\d{2}", "NNN NN"),
    "GR": (r"\d{3} ?\d{2}", "NNN NN"),
    "PL": (r"\d{2}-\d{3}", "NN-NNN"),
    "PT": (r"\d{4}-\d{3}", "NNNN-NNN"),
    "IE": (r"[A-Z]\d[\dW] ?[0-9AC-FHKNPRTV-Y]{4}", "an Eircode, e.g. D02 X285"),
    "GB": (r"([A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|GIR ?0AA)", "e.g. SW1A 1AA"),
}
POSTAL_CODES = {country: re.compile(pattern) for country, (pattern, _) in _FORMATS.items()}
POSTAL_CODE_HINTS = {country: hint for country, (_, hint) in _FORMATS.items()}


def postal_code_valid(country: str, postal_code: str) -> bool:
    """The country's format where POSTAL_CODES knows it; elsewhere any non-empty code."""
    pattern = POSTAL_CODES.get(country.upper())
    code = postal_code.strip().upper()
    return bool(code) and (pattern is None or bool(pattern.fullmatch(code)))
