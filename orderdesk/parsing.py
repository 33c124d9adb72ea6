"""Numbers read from headers, cursors and path parameters: ASCII digits only.

`"²".isdigit()` is true and `int("²")` raises, so `text.isdigit()` is no guard before `int()`;
`int()` on the other hand accepts other scripts' digits ("٣") and spaces. What a partner sends
in a header or cursor is a plain ASCII number or it is refused.
"""

from __future__ import annotations


def whole_number(text: str | None) -> int | None:
    """The non-negative number `text` spells in ASCII digits, else None."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text)
