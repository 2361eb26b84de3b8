"""A campaign's rendered message obeys exactly the rules of `POST /tts/call`'s `text`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ttsqueue.api.schemas import CallRequestIn
from ttsqueue.text_rules import checked_text

CONTROLS = "".join(chr(c) for c in [*range(0x20), 0x7F])


@given(st.text(alphabet=st.sampled_from(CONTROLS + " aé\u00a0\u2028"), max_size=12))
def test_same_verdict_as_the_call_request(text: str) -> None:
    try:
        expected: str | None = CallRequestIn(text=text, phone_number="3005050149").text
    except ValidationError:
        expected = None
    try:
        got: str | None = checked_text(text, max_length=1000)
    except ValueError:
        got = None
    assert got == expected


def test_length_counts_after_trimming() -> None:
    assert checked_text("  " + "a" * 10 + "\n", 10) == "a" * 10
