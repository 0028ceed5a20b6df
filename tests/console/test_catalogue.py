"""Every text the console shows has its Simplified Chinese translation, with the same placeholders."""

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from riskops.console import i18n

CONSOLE = Path(i18n.__file__).parent
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


def console_messages() -> set[str]:
    found = set()
    for _name, _line, message, _comments, _context in extract_from_dir(
        CONSOLE, METHODS, options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.add(text)
    return found


def test_every_message_has_a_chinese_translation() -> None:
    messages = console_messages()
    assert "Sign in" in messages and len(messages) > 15  # the extraction read the templates
    catalogue = i18n.translations("zh-CN")
    missing = sorted(m for m in messages if catalogue.gettext(m) == m)
    assert not missing, f"{len(missing)} messages lack a zh-CN translation: {missing[:20]}"


def test_translations_keep_their_placeholders() -> None:
    catalogue = i18n.translations("zh-CN")
    for message in console_messages():
        placeholders = sorted(re.findall(r"%\((\w+)\)s", message))
        assert sorted(re.findall(r"%\((\w+)\)s", catalogue.gettext(message))) == placeholders, message


def test_the_browser_language_is_chosen_when_no_user_is_signed_in() -> None:
    assert i18n.from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert i18n.from_accept_language("zh") == "zh-CN"
    assert i18n.from_accept_language("fr-FR, en;q=0.5") == "en"
    assert i18n.from_accept_language("en;q=0.2, zh-CN;q=0.9") == "zh-CN"
    assert i18n.from_accept_language("de") == "en"  # not offered: English
    assert i18n.from_accept_language("q=;;,,," + "x" * 10_000) == "en"  # bounded and forgiving
