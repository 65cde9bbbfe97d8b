# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""Durations of service settings: read in any form the collection or the server uses, compared by value.

Accepted: the collection's age vocabulary (``90s``, ``12h``, ``7d``, ``2w``, ``1d12h``), ISO 8601 without years or
months (``PT3H``, ``P1D``, ``P1W``, ``PT1.5S``) and the server's "friendly" form (``5 hours``, ``1d 2h``,
``1 day``, ``1h 30m``, ``500ms``; lower case only, as the server takes it: it refuses ``5M``, ``1D``, ``2W``,
``5 Hours``, while ISO 8601 is taken in either case). A restate-server 1.7 refuses years and months ("please use units of days or
smaller"), so they are refused here too, before any call. Values are whole milliseconds; ``to_server`` writes one
in the server's own compact form (``1d 12h``), which every server takes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._selection import AGE_PART, AGE_PATTERN, AGE_UNITS

MS_PER = {
    "ms": 1, "msec": 1, "msecs": 1, "millis": 1, "millisecond": 1, "milliseconds": 1,
    "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
    "m": 60000, "min": 60000, "mins": 60000, "minute": 60000, "minutes": 60000,
    "h": 3600000, "hr": 3600000, "hrs": 3600000, "hour": 3600000, "hours": 3600000,
    "d": 86400000, "day": 86400000, "days": 86400000,
    "w": 604800000, "week": 604800000, "weeks": 604800000,
}
TOO_LONG_UNITS = ("y", "yr", "yrs", "year", "years", "mo", "month", "months")
FRIENDLY_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*,?")
ISO_PATTERN = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")
ISO_MS = {"weeks": 604800000, "days": 86400000, "hours": 3600000, "minutes": 60000, "seconds": 1000}
# What the server writes, largest first (it never writes weeks: 1w is answered as 7d).
COMPACT_UNITS = (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1))
MAX_MS = 100 * 365 * 86400000  # far beyond any retention; keeps the arithmetic and the server's u64 safe

EXAMPLES = "'90s', '12h', '7d', '1d12h', '1 day', '1d 2h', 'PT3H' or 'P1D'"


def parse_duration(value, option: str) -> int:
    """Milliseconds for ``value``; InputError naming ``option`` when it is no duration the server can take."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{option}: {value!r} is not a duration; use e.g. {EXAMPLES}")
    text = str(value).strip()
    if not text:
        raise InputError(f"{option}: an empty string is not a duration; use e.g. {EXAMPLES}")
    if text.startswith("-"):
        raise InputError(f"{option}: {text[:80]!r} is negative; a duration is zero or more, e.g. {EXAMPLES}")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        raise InputError(f"{option}: {text[:80]!r} has no unit; write e.g. '{text}s' or '{text}h'")
    if AGE_PATTERN.match(text):
        return _checked(sum(int(n) * AGE_UNITS[unit] * 1000 for n, unit in AGE_PART.findall(text)), text, option)
    upper = text.upper()
    if upper.startswith("P"):
        return _iso(upper, text, option)
    if text != text.lower():
        # The server's units are lower case: it refuses 5M, 1D, 2W, 5 Hours (422); read as 5m, 5M would turn a
        # "5 months" into 5 minutes.
        raise InputError(f"{option}: {text[:80]!r} has an upper-case unit, which the server refuses; units are "
                         "lower case (ms, s, m for minutes, h, d, w), and months or years are refused, e.g. '5m', "
                         "'30d' or 'P30D'")
    return _friendly(text, text, option)


def _iso(upper: str, text: str, option: str) -> int:
    match = ISO_PATTERN.match(upper)
    if not match or upper in ("P", "PT") or upper.endswith("T"):
        if re.match(r"^P(?:\d+(?:\.\d+)?[YM])", upper):
            raise InputError(f"{option}: {text[:80]!r} uses years or months, which the server refuses; "
                             "use days or smaller, e.g. 'P30D' or '30d'")
        raise InputError(f"{option}: {text[:80]!r} is not an ISO 8601 duration the server takes; use e.g. "
                         "'PT3H', 'P1D', 'P1DT12H' (no years or months)")
    total = Decimal(0)
    for name, factor in ISO_MS.items():
        if match.group(name):
            total += Decimal(match.group(name)) * factor
    return _checked(total, text, option)


def _friendly(lower: str, text: str, option: str) -> int:
    position, total = 0, Decimal(0)
    while position < len(lower):
        part = FRIENDLY_PART.match(lower, position)
        if not part or part.end() == position:
            raise InputError(f"{option}: {text[:80]!r} is not a duration; use e.g. {EXAMPLES}")
        number, unit = part.groups()
        if unit in TOO_LONG_UNITS:
            raise InputError(f"{option}: {text[:80]!r} uses years or months, which the server refuses; use days or "
                             "smaller, e.g. '30d'")
        if unit not in MS_PER:
            raise InputError(f"{option}: unknown unit {unit!r} in {text[:80]!r}; use ms, s, m, h, d or w "
                             "(or seconds, minutes, hours, days, weeks)")
        try:
            total += Decimal(number) * MS_PER[unit]
        except InvalidOperation:
            raise InputError(f"{option}: {text[:80]!r} is not a duration; use e.g. {EXAMPLES}")
        position = part.end()
    return _checked(total, text, option)


def _checked(total, text: str, option: str) -> int:
    if total > MAX_MS:
        raise InputError(f"{option}: {text[:80]!r} is too long; at most 100 years (36500d)")
    if total != int(total):
        raise InputError(f"{option}: {text[:80]!r} is finer than a millisecond; round it to whole milliseconds")
    return int(total)


def to_server(milliseconds: int) -> str:
    """The server's compact form of a duration: ``1d 12h``, ``1m 30s``, ``500ms``, ``0s``."""
    parts, rest = [], int(milliseconds)
    for unit, size in COMPACT_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def same_duration(first, second) -> bool:
    """Whether two durations, in any accepted form, are equal; a form that cannot be read equals nothing."""
    try:
        return parse_duration(first, "value") == parse_duration(second, "value")
    except InputError:
        return False
