"""Named sets of calling rules an operator can pick with one word. Pure and light (no holiday
data loaded), so that settings can check a `CALLING_WINDOWS` value cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from ttsqueue.policy.windows import WindowSpecError, parse_windows


@dataclass(frozen=True, slots=True)
class Preset:
    windows: str
    holidays: str
    max_contacts_per_day: int
    summary: str


PRESETS: dict[str, Preset] = {
    # Colombia, Ley 2300 de 2023 (art. 3): collection contacts Monday to Friday 07:00-19:00,
    # Saturday 08:00-15:00, never on Sundays or holidays, at most once a day.
    "co-ley-2300": Preset(
        windows="mon-fri 07:00-19:00; sat 08:00-15:00",
        holidays="CO",
        max_contacts_per_day=1,
        summary="Colombia, Ley 2300 de 2023",
    ),
}


def preset_named(text: str) -> tuple[str, Preset] | None:
    """The preset a setting or request names (case and surrounding spaces ignored), if any."""
    name = text.strip().lower()
    preset = PRESETS.get(name)
    return (name, preset) if preset is not None else None


def check_calling_windows(text: str) -> None:
    """A preset name or a window spec, else WindowSpecError naming the problem."""
    if preset_named(text) is not None:
        return
    try:
        parse_windows(text)
    except WindowSpecError:
        if ":" not in text:  # not even trying to be a spec: a misspelt preset, probably
            names = ", ".join(PRESETS)
            raise WindowSpecError(
                f"{text.strip()[:40]!r} is neither a preset ({names}) nor a window spec "
                "like 'mon-fri 07:00-19:00; sat 08:00-15:00'"
            ) from None
        raise
