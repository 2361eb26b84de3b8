"""The default confirmation prompts (SPEC §12), in English and Spanish. Pure.

A request can replace the text (`confirm.prompt`); for any other language it must. The prompt
names the keys the call really accepts, so that it never tells a callee to press a key the
dialplan ignores.
"""

from __future__ import annotations

_KEY_NAMES = {"es": {"*": "asterisco"}, "en": {"*": "star"}}
_OR = {"es": " o ", "en": " or "}
_CONFIRM = {"es": "Para confirmar, presione {keys}.", "en": "To confirm, press {keys}."}
_REPEAT = {
    "es": " Para escuchar el mensaje de nuevo, presione {key}.",
    "en": " To hear the message again, press {key}.",
}


def prompt_language(language: str) -> str | None:
    """`es` or `en` for any variant of them (es-MX, en-us), else None."""
    base = language.lower().replace("_", "-").split("-")[0]
    return base if base in _CONFIRM else None


def _name(key: str, lang: str) -> str:
    return _KEY_NAMES[lang].get(key, key)


def default_prompt(language: str, digits: str, repeat_digit: str | None) -> str | None:
    """The prompt for `language`, naming `digits` and `repeat_digit`; None when there is no
    default for that language."""
    lang = prompt_language(language)
    if lang is None:
        return None
    keys = _OR[lang].join(_name(key, lang) for key in digits)
    text = _CONFIRM[lang].format(keys=keys)
    if repeat_digit:
        text += _REPEAT[lang].format(key=_name(repeat_digit, lang))
    return text
