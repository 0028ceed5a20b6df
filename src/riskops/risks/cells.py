"""What a register's cells mean, as spreadsheets write them: dates in three orders or as Excel serials, the
treatment words registers use, and text an export defused against formulas."""

import re
from datetime import UTC, date, datetime, time
from typing import Any, Literal, get_args

from openpyxl.utils.datetime import from_excel

from riskops.risks.export import FORMULA_PREFIXES
from riskops.risks.models import Treatment

DateFormat = Literal["iso", "dmy", "mdy"]
DATE_FORMATS: tuple[DateFormat, ...] = get_args(DateFormat)

# 2027-01-15, optionally with a time and zone: what the API and the service's own exports write.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?", re.IGNORECASE)
# 15/01/2027, 1.15.27, 15-01-2027 09:30: day and month in an order the file's locale chose.
_LOCAL = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
# Excel's serial day numbers, 1900-01-01 to 9999-12-31.
_SERIALS = range(1, 2_958_466)

EXPECTED_DATE = {
    "iso": "a date as YYYY-MM-DD (or an ISO timestamp)",
    "dmy": "a date as DD/MM/YYYY (or YYYY-MM-DD)",
    "mdy": "a date as MM/DD/YYYY (or YYYY-MM-DD)",
}


def is_iso(text: str) -> bool:
    return _ISO.fullmatch(text) is not None


def date_formats_fitting(text: str) -> set[DateFormat]:
    """The orders a day/month/year text can be read in: one where a number above 12 decides, both where none
    does, none when it is no such date at all. ISO text fits every order."""
    if is_iso(text):
        return set(DATE_FORMATS)
    match = _LOCAL.fullmatch(text)
    if match is None:
        return set()
    first, second, year = int(match[1]), int(match[3]), _year(match[4])
    fits: set[DateFormat] = set()
    if _real(year, second, first):
        fits.add("dmy")
    if _real(year, first, second):
        fits.add("mdy")
    return fits


def read_date(value: Any, date_format: DateFormat | None) -> Any:
    """A date or timestamp cell as the API takes it: ISO text, or a date / datetime; anything else unchanged,
    for the model to refuse. Text in a local order needs `date_format` (None: not decided, left as it is)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _serial(value)
    if not isinstance(value, str) or is_iso(value) or date_format in (None, "iso"):
        return value
    match = _LOCAL.fullmatch(value)
    if match is None:
        return value
    first, second = int(match[1]), int(match[3])
    day, month = (first, second) if date_format == "dmy" else (second, first)
    if not _real(_year(match[4]), month, day):
        return value
    moment = time(int(match[5] or 0), int(match[6] or 0), int(match[7] or 0)) if match[5] else None
    if moment is None:
        return date(_year(match[4]), month, day)
    return datetime.combine(date(_year(match[4]), month, day), moment, UTC)


def _serial(number: float) -> Any:
    """An Excel serial day (a date cell formatted as a number): the day, or the moment when it has a time."""
    if int(number) not in _SERIALS:
        return number
    moment: datetime = from_excel(number)
    return moment.date() if moment.time() == time.min else moment.replace(tzinfo=UTC)


def _year(text: str) -> int:
    return int(text) + 2000 if len(text) == 2 else int(text)  # a register's dates are this century's


def _real(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


# The words registers use for the four treatments: the ISO 31000 words, and the "4 Ts" (tolerate, treat,
# transfer, terminate).
TREATMENT_WORDS: dict[str, Treatment] = {
    **{t.value: t for t in Treatment},
    "reduce": Treatment.mitigate, "treat": Treatment.mitigate, "share": Treatment.transfer,
    "retain": Treatment.accept, "tolerate": Treatment.accept, "terminate": Treatment.avoid,
}  # fmt: skip
EXPECTED_TREATMENT = "avoid, mitigate, transfer or accept (or reduce, treat, share, retain, tolerate, terminate)"


def treatment(value: Any) -> Treatment | None:
    """The treatment a word names, whatever its case; None for a word that names none."""
    return TREATMENT_WORDS.get(value.strip().lower()) if isinstance(value, str) else None


def undo_neutralise(text: str) -> str:
    """A cell the service's own export defused ('=...), as it was: exports re-import to the same text."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES) else text
