"""Hypothesis strategies for hostile input: what an attacker would put in a phone number, a
caller id or any string that might end up in a dial string, a call file or an AMI action."""

from __future__ import annotations

from hypothesis import strategies as st

# Characters that end a line or split a field in AMI, Dial(), Playback() or a call file.
SEPARATORS = "\r\n\x00&,|;"
FORBIDDEN_IN_CHANNEL = frozenset(SEPARATORS)
LINE_BREAKERS = frozenset("\r\n\x00")

INJECTIONS = [
    "\r\nAction: Originate\r\nChannel: SIP/evil\r\n\r\n",
    "\nChannel: Local/666@default\n",
    "\r",
    "\n",
    "\x00",
    "&SIP/attacker",
    ",1,tT",
    "|x",
    ";x",
    "${SHELL(rm -rf /)}",
    "$(id)",
    "`id`",
    "@evil-trunk",
    "/../../etc/passwd",
    '"<3005050149>',
    "<sip:evil@host>",
    "\u2028",
    "\u0085",
    "\u200b",
]
# Digits from other scripts, which the phone library would happily convert.
LOOKALIKE_DIGITS = "٠١٢٣٤٥٦٧٨٩۳०３¹²"
NUMBER_ALPHABET = "0123456789+ -()." + SEPARATORS + LOOKALIKE_DIGITS + "\t\x0b\x0c"
NUMBERS = ["3005050149", "+57 300 505 0149", "6015550100", "+34 612 345 678", "12345", "+1"]


def injected() -> st.SearchStrategy[str]:
    """A plausible value with an injection before, inside or after it."""
    return st.builds(
        lambda head, attack, tail: head + attack + tail,
        st.sampled_from(["", *NUMBERS, "Clínica", '"Norte" <']),
        st.sampled_from(INJECTIONS),
        st.sampled_from(["", *NUMBERS, ">", "3005050149>"]),
    )


def hostile_text(max_size: int = 48) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=max_size),
        st.text(alphabet=NUMBER_ALPHABET, max_size=max_size),
        injected(),
        st.lists(st.one_of(st.sampled_from(NUMBERS), injected()), max_size=3).map("".join),
    )
