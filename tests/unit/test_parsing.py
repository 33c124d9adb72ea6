from hypothesis import given
from hypothesis import strategies as st

from orderdesk.parsing import whole_number


def test_ascii_digits_only():
    assert whole_number("42") == 42 and whole_number("007") == 7
    for refused in ("", None, "²", "٣", " 4", "4 ", "-1", "+1", "1_000", "1e3", "0x10"):
        assert whole_number(refused) is None, refused


@given(st.text(max_size=12))
def test_never_raises_and_agrees_with_int_on_what_it_accepts(text):
    value = whole_number(text)
    assert value is None or (value == int(text) and text.isascii())
