"""The message catalogues: what the console's code and templates say, extracted with Babel's extractors.

    .venv/bin/python -m console.catalog          # brings every messages.po up to date with the code
                                                 # (new strings added untranslated, gone ones marked obsolete),
                                                 # then lists the strings that still lack a translation

tests/unit/console/test_translations.py fails while any string lacks its zh_Hans translation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from console.i18n import DEFAULT, LOCALE_DIR, LOCALES

PACKAGE = Path(__file__).parent
METHODS = [
    ("**/locale/**", "ignore"),
    ("**.py", "python"),
    ("templates/**.html", "jinja2.ext:babel_extract"),
]
OPTIONS = {"templates/**.html": {"trim_blocks": "True", "lstrip_blocks": "True"}}


def extract() -> Catalog:
    """Every message of console/ (Python: _, gettext, ngettext, N_; templates: _() and {% trans %})."""
    template = Catalog(project="orderdesk console", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        PACKAGE, METHODS, options_map=OPTIONS, keywords=DEFAULT_KEYWORDS
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def read(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.exists():
        return Catalog(locale=locale, project="orderdesk console", charset="utf-8")
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def untranslated(catalog: Catalog, template: Catalog) -> list[str]:
    """The template's messages the catalogue has no (non-fuzzy) translation for."""
    missing = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, message.context)
        strings = found.string if found else None
        if isinstance(strings, tuple | list):
            ok = all(strings)
        else:
            ok = bool(strings)
        if found is None or not ok or found.fuzzy:
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def update() -> dict[str, list[str]]:
    template = extract()
    missing = {}
    for locale in LOCALES:
        if locale == DEFAULT:
            continue
        catalog = read(locale)
        # No creation date or source lines written: several people add strings at once, and a catalogue
        # that changes only where strings change merges cleanly.
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        catalog.fuzzy = False  # the header: a fuzzy one would be left out of the compiled catalogue
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as target:
            write_po(
                target,
                catalog,
                width=110,
                sort_output=True,
                no_location=True,
                ignore_obsolete=True,
                include_previous=False,
            )
        missing[locale] = untranslated(catalog, template)
    return missing


def main() -> int:
    missing = update()
    for locale, ids in missing.items():
        print(f"{locale}: {len(ids)} without a translation")
        for message in ids:
            print(f"  {message!r}")
    return 1 if any(missing.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
