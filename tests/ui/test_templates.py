"""The pages work offline: every script, style and image comes from this server."""

import re
from pathlib import Path

from django.conf import settings

from analytics.templatetags.ui_tags import amount, sign_class

TEMPLATES = sorted((settings.BASE_DIR / "templates").glob("ui/**/*.html")) + sorted(
    (settings.BASE_DIR / "templates" / "registration").glob("*.html")
)


def test_it_finds_the_templates():
    assert Path(settings.BASE_DIR / "templates" / "ui" / "base.html") in TEMPLATES


def test_it_references_no_outside_asset():
    for template in TEMPLATES:
        assert not re.search(r"https?://", template.read_text()), template


def test_it_vendors_each_library_with_its_licence():
    vendor = settings.BASE_DIR / "static" / "vendor"
    for library, script in (("htmx", "htmx.min.js"), ("lightweight-charts", "lightweight-charts.standalone.production.js")):
        assert (vendor / library / script).is_file()
        assert (vendor / library / "LICENSE").is_file()


def test_it_writes_numbers_as_people_read_them():
    assert amount("45000.5000000000") == "45,000.5"
    assert amount(45000) == "45,000"
    assert amount("0.00010000") == "0.0001"
    assert amount("1E+3") == "1,000"
    assert amount("-0E-10") == "0"
    assert amount("-1234.5") == "-1,234.5"
    assert amount("10000", 2) == "10,000.00"
    assert amount("-0.001", 2) == "0.00"
    assert amount("12.345", "1") == "12.3"
    assert amount(None) == "—"
    assert amount("not a number") == "not a number"


def test_it_colours_profit_and_loss():
    assert sign_class("1.5") == "pos"
    assert sign_class("-0.1") == "neg"
    assert sign_class("0") == ""
    assert sign_class(None) == ""
    assert sign_class("NaN") == ""
