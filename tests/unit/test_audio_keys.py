"""Cache keys: stable across equivalent spellings of a text, distinct across what matters."""

from __future__ import annotations

import hashlib
import json
import unicodedata

import pytest

from ttsqueue.tts.cache import cache_key, normalize_text
from ttsqueue.tts.catalog import valid_tld
from ttsqueue.tts.espeak import VoiceCatalog

TEXT = "Su cita es mañana a las 3 p. m."


def test_normalization_nfc_whitespace_and_trim() -> None:
    decomposed = unicodedata.normalize("NFD", TEXT)
    assert decomposed != TEXT
    messy = "  " + decomposed.replace(" ", " \t\n ") + "\u00a0\n"
    assert normalize_text(messy) == TEXT


def test_key_is_stable_for_equivalent_texts() -> None:
    base = cache_key("espeak", None, "es", TEXT)
    assert cache_key("espeak", None, "es", "\n" + TEXT.replace(" ", "   ")) == base
    assert cache_key("espeak", None, "ES", unicodedata.normalize("NFD", TEXT)) == base
    assert cache_key("espeak", "", "es", TEXT) == base
    assert base == cache_key("espeak", None, "es", TEXT)
    assert len(base) == 64
    assert int(base, 16) >= 0


@pytest.mark.parametrize(
    "other",
    [
        ("gtts", None, "es", TEXT),
        ("espeak", "es+f3", "es", TEXT),
        ("espeak", None, "es-419", TEXT),
        ("espeak", None, "es", TEXT + "."),
        ("espeak", None, "es", TEXT.lower()),
    ],
)
def test_key_changes_with_engine_voice_language_and_text(
    other: tuple[str, str | None, str, str],
) -> None:
    assert cache_key(*other) != cache_key("espeak", None, "es", TEXT)


def test_fields_cannot_bleed_into_each_other() -> None:
    assert cache_key("espeak", "a", "b", "c") != cache_key("espeak", "a b", "", "c")
    assert cache_key("espeak", None, "es", "x y") != cache_key("espeak", None, "es x", "y")


def _as_written_before(engine: str, voice: str | None, language: str, text: str) -> str:
    """The key entries already in a cache were named with: json.dumps of the four strings."""
    material = json.dumps([engine, voice or "", language.lower(), normalize_text(text)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    "fields",
    [
        ("espeak", None, "es", TEXT),
        ("gtts", "com.mx", "ES-419", "  ¿Mañana?\t\n¡Sí!  "),
        ("piper", "es_MX-claude", "es", 'comillas " y barra \\ y / y \x7f'),
        ("espeak", "es+f3", "pt-BR", "emoji 😀 y 中文, ǅ, e\u0301"),
        ("espeak", 'v"oz\\', 'l"a', "\u2028 \u2029 \ufeff"),
    ],
)
def test_keys_are_those_entries_on_disk_were_named_with(
    fields: tuple[str, str | None, str, str],
) -> None:
    assert cache_key(*fields) == _as_written_before(*fields)


VOICES = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  es              --/M      Spanish_(Spain)    roa/es
 5  es-419          --/M      Spanish_(Latin_America) roa/es-419           (es-mx 6)(es 6)
"""
VARIANTS = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/F      Alicia             !v/Alicia
 5  variant         --/F      female3            !v/f3
"""


def test_espeak_catalog_reads_languages_files_and_variants() -> None:
    catalog = VoiceCatalog.parse(VOICES, VARIANTS)
    assert catalog.languages == {"en-us", "en", "es", "es-419", "es-mx"}
    assert catalog.variants == {"Alicia", "f3"}
    for voice in ("es", "ES", "es-mx", "roa/es-419", "es+f3", "en+Alicia"):
        assert catalog.knows_voice(voice), voice
    for voice in ("xx", "es+f9", "es+alicia", "-v", "es;rm", "es\nen", "../../etc/passwd", ""):
        assert not catalog.knows_voice(voice), voice


@pytest.mark.parametrize("tld", ["com", "com.mx", "co.uk", "es", "com.co"])
def test_gtts_voice_accepts_plain_host_suffixes(tld: str) -> None:
    assert valid_tld(tld)


@pytest.mark.parametrize(
    "tld", ["", "COM", ".com", "com.", "com/evil", "com@evil.org", "com:8080", "a.b.c.d", "-com"]
)
def test_gtts_voice_refuses_anything_else(tld: str) -> None:
    assert not valid_tld(tld)
