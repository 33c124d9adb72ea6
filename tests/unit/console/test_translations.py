"""Every string the console shows has its Simplified Chinese translation (extracted with Babel's extractors
from console/**.py and console/templates/**), with the same placeholders; `python -m console.catalog`
brings the catalogue up to date and lists what is missing."""

import re
from html.parser import HTMLParser

from console import catalog, i18n, web


def test_every_string_has_a_zh_hans_translation():
    template = catalog.extract()
    assert len(template) > 50, "the extractors found (almost) nothing: is the method map right?"
    missing = catalog.untranslated(catalog.read("zh_Hans"), template)
    assert not missing, (
        f"{len(missing)} strings lack a zh_Hans translation (run .venv/bin/python -m console.catalog, "
        f"then translate them in {catalog.po_path('zh_Hans')}): {missing}"
    )


def test_translations_keep_their_placeholders():
    problems = [
        (message.id, [str(e) for e in errors])
        for message, errors in catalog.read("zh_Hans").check()
        if errors
    ]
    assert not problems


def test_the_extractors_see_templates_and_python_code():
    ids = {m.id for m in catalog.extract()}
    assert "Sign in" in ids  # a template
    assert "Credit limit exceeded" in ids  # N_() in console/words.py


def test_a_page_string_reads_in_chinese():
    token = i18n.current.set("zh_Hans")
    try:
        assert i18n.gettext("Sign in") == "登录"
        assert i18n.format_money("5000", "USD") == "US$5,000.00"
    finally:
        i18n.current.reset(token)
    assert i18n.gettext("Sign in") == "Sign in"


def test_the_language_follows_the_account_then_the_switch_then_the_browser():
    assert i18n.choose("zh_Hans", "en", "en") == "zh_Hans"
    assert i18n.choose("", "zh_Hans", "en-GB") == "zh_Hans"
    assert i18n.choose("", "", "zh-CN,zh;q=0.9,en;q=0.8") == "zh_Hans"
    assert i18n.choose("", "", "fr-FR,en;q=0.5,zh;q=0.4") == "en"
    assert i18n.choose("", "", "zh-TW") == "en"  # traditional script: not offered yet
    assert i18n.choose("", "", "") == "en"


# --- no visible text outside _() ---------------------------------------------------------------------
VISIBLE_ATTRIBUTES = {"aria-label", "title", "placeholder", "alt"}
JINJA = "\u00a7"  # stands for each {{ … }} and {% … %} in the page's HTML
LETTERS = re.compile(r"[^\W\d_]")


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_data(self, data):
        if LETTERS.search(data.replace(JINJA, "")):
            self.found.append(data.replace(JINJA, "").strip())

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in VISIBLE_ATTRIBUTES and value and LETTERS.search(value.replace(JINJA, "")):
                self.found.append(value.replace(JINJA, "").strip())


def untranslated_text(source: str) -> list[str]:
    """Text a person would see that a template writes outside `_()`: the HTML's text, and the values of
    attributes people read (aria-label, title, placeholder, alt), with every Jinja expression taken out."""
    html = "".join(
        value if kind == "data" else (JINJA if kind in ("variable_begin", "block_begin") else "")
        for _lineno, kind, value in web.environment.lex(source)
    )
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.found


def test_templates_show_no_text_outside_gettext():
    offenders = {}
    for path in sorted(web.TEMPLATES.rglob("*.html")):
        found = untranslated_text(path.read_text())
        if found:
            offenders[str(path.relative_to(web.TEMPLATES))] = found
    assert not offenders, (
        f"visible text outside _() (wrap it, then run python -m console.catalog): {offenders}"
    )


def test_the_check_finds_bare_text_and_labels():
    assert untranslated_text("<p>Hello {{ _('World') }}</p>") == ["Hello"]
    assert untranslated_text('<nav aria-label="Main">{{ x }}</nav>') == ["Main"]
    assert untranslated_text("<p>{{ _('fine') }} · 12</p><!-- a comment -->") == []
