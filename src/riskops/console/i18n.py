"""The console's languages: message catalogues (gettext .po files, read with Babel when the process starts), the
choice of language for a request, and dates and numbers written for a locale and a time zone."""

from datetime import datetime
from decimal import Decimal
from functools import cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
# A user's language setting (riskops.users.models.Language) -> its catalogue's directory.
LANGUAGES = {"en": "en", "zh-CN": "zh_CN"}
DEFAULT = "en"
# Accept-Language is a header of the client's: bounded before it is parsed.
_ACCEPT_MAX = 200


@cache
def translations(language: str) -> NullTranslations:
    """Every catalogue of the language (one .po file per part of the console), merged; English is the source text."""
    folder = LOCALE_DIR / LANGUAGES.get(language, DEFAULT) / "LC_MESSAGES"
    merged: NullTranslations = NullTranslations()
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as source:
            catalog = read_po(source, locale=LANGUAGES[language])
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        part = Translations(compiled, domain=path.stem)
        if isinstance(merged, Translations):
            merged.merge(part)
        else:
            merged = part
    return merged


def from_accept_language(header: str | None) -> str:
    """The first language of the header's (by q-value) that the console speaks; English otherwise."""
    ranked: list[tuple[float, str]] = []
    for position, item in enumerate((header or "")[:_ACCEPT_MAX].split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            ranked.append((-quality + position * 1e-6, tag.replace("_", "-")))
    preferred = [tag for _, tag in sorted(ranked)]
    # zh, zh-Hans and zh-SG read the Simplified catalogue; zh-TW and zh-HK are not offered it.
    aliases = {"zh": "zh-CN", "zh-hans": "zh-CN", "zh-hans-cn": "zh-CN", "zh-sg": "zh-CN", "en-gb": "en", "en-us": "en"}
    found = negotiate_locale(preferred, list(LANGUAGES), sep="-", aliases=aliases)
    return found if found in LANGUAGES else DEFAULT


@cache
def locale_of(language: str) -> Locale:
    return Locale.parse(LANGUAGES.get(language, DEFAULT))


def when(value: datetime | str | None, language: str, zone: ZoneInfo, form: str = "medium") -> str:
    """A moment as the reader's locale writes it, in their time zone."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_datetime(moment, form, tzinfo=zone, locale=locale_of(language))


def number(value: float | int | None, language: str) -> str:
    return "" if value is None else format_decimal(value, locale=locale_of(language))


def money(amount: Decimal, currency: str, language: str) -> str:
    """An amount in its currency as the reader's locale writes it, with the currency's own decimals."""
    return format_currency(amount, currency, locale=locale_of(language))
