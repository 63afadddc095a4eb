"""The API takes what its schema says and nothing else, and the schema documents every answer
(issue #17). tests/api/test_fuzz.py checks the same at random; these are the cases it found."""

from decimal import Decimal

import jsonschema
import pytest
from django.test import Client

from alsatrade.api_fields import NOT_BLANK, SPACE
from preferences.api import PREFERENCE_TYPES
from preferences.api_values import as_json_schema, value_schema
from tests.api.records import make_execution
from trading.models import Position, TradingHalt

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api) -> dict:
    return api.get("/api/schema/?format=json").json()


@pytest.mark.parametrize(("url", "named"), [
    ("/executions?status=", "status"),
    ("/executions?strategy=", "strategy"),
    ("/signals?symbol=", "symbol"),
    ("/signals?received_after=", "received_after"),
    ("/orders?source=", "source"),
    ("/orders?symbol=BTC%00USDT", "symbol"),
    ("/orders?execution=0", "execution"),
    ("/orders?execution=1.0", "execution"),
    ("/orders?execution=%201", "execution"),
    ("/orders?execution=%D9%A1", "execution"),  # an Arabic-Indic 1, which int() reads
    ("/positions?all=yes", "all"),
    ("/positions?all=", "all"),
])
def test_it_refuses_a_query_value_the_schema_refuses(api, url, named):
    response = api.get(url)
    assert response.status_code == 400
    assert list(response.json()) == [named]


def test_it_lists_nothing_for_an_unknown_execution_instead_of_refusing_it(api):
    execution = make_execution(1)
    assert api.get("/orders?execution=999999999").json()["results"] == []
    assert api.get("/orders?execution=9223372036854775807").json()["results"] == []
    assert api.get("/orders?execution=9223372036854775808").status_code == 400
    assert [order["execution"] for order in api.get(f"/orders?execution={execution.pk}").json()["results"]] == [execution.pk]


def test_it_reads_a_blank_text_filter_as_text(api):
    make_execution(1)
    response = api.get("/executions?strategy=%20")
    assert response.status_code == 200  # the schema allows " "; Django's form strips it to no filter


@pytest.mark.parametrize(("page", "status"), [
    ("1", 200), ("0", 404), ("2", 404), ("last", 404), ("", 404), ("%201", 404), ("1.0", 404), ("%EF%BC%91", 404),
])
def test_it_pages_by_ascii_whole_numbers_from_1_only(api, page, status):
    make_execution(1)
    response = api.get(f"/executions?page={page}")
    assert response.status_code == status
    if status == 404:
        assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(("shown", "symbols"), [
    ("true", {"BTCUSDT", "SOLUSDT"}), ("1", {"BTCUSDT", "SOLUSDT"}), ("false", {"BTCUSDT"}), ("0", {"BTCUSDT"}),
])
def test_it_reads_all_as_its_four_words(api, shown, symbols):
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.002"))
    Position.objects.create(symbol="SOLUSDT", amount=Decimal("0"))
    response = api.get(f"/positions?all={shown}")
    assert {position["symbol"] for position in response.json()["results"]} == symbols


@pytest.mark.parametrize("body", [
    {}, {"halted": "true"}, {"halted": 1}, {"halted": None}, {"halted": True, "flatten": "false"},
    {"halted": True, "reason": 5}, {"halted": True, "reason": "a\x00b"}, {"halted": True, "reason": "x" * 256},
])
def test_the_kill_switch_refuses_a_body_the_schema_refuses(admin_api, body):
    response = admin_api.post("/halt", body, format="json")
    assert response.status_code == 400
    assert TradingHalt.current().halted is False


def test_the_kill_switch_keeps_a_reason_as_sent(admin_api):
    response = admin_api.post("/halt", {"halted": True, "reason": " maintenance " + "x" * 242}, format="json")
    assert response.status_code == 200
    assert TradingHalt.current().reason == " maintenance " + "x" * 242
    assert admin_api.post("/halt", {"halted": True, "reason": ""}, format="json").status_code == 200


def test_every_operation_documents_401_and_each_error_it_answers(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert "401" in operation["responses"], (method, path)
            parameters = {parameter["name"] for parameter in operation.get("parameters", [])}
            if "page" in parameters:
                assert "404" in operation["responses"], (method, path)
            if parameters - {"page"} or "requestBody" in operation:
                assert "400" in operation["responses"], (method, path)
            if method == "post":
                assert "403" in operation["responses"], (method, path)


def test_each_preference_type_is_an_operation_with_its_own_value(schema):
    for kind, field in PREFERENCE_TYPES.items():
        operation = schema["paths"][f"/preferences/{kind}"]["post"]
        body = operation["requestBody"]["content"]
        assert list(body) == ["application/json"]
        assert body["application/json"]["schema"]["properties"]["value"] == value_schema(kind, field)
        assert {"200", "201", "400", "401", "403", "409"} <= set(operation["responses"])
    leverage = schema["paths"]["/preferences/leverage"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert leverage["properties"]["value"] == {
        "type": "integer", "minimum": 1, "maximum": 125, "description": "a whole number from 1 to 125",
    }
    assert leverage["required"] == ["strategy", "value"]


def test_a_number_types_bounds_come_from_the_model():
    assert value_schema("allocation", "allocation_pct")["minimum"] == 0.0001
    assert value_schema("allocation", "allocation_pct")["maximum"] == 100
    assert value_schema("max_daily_loss", "max_daily_loss") == {
        "type": "number", "minimum": 0.01, "maximum": 1e17, "nullable": True,
        "description": "a number from 0.01 to 100000000000000000, kept to 10 decimals, or null",
    }
    assert value_schema("max_open_positions", "max_open_positions")["maximum"] == 32767


@pytest.mark.parametrize(("value", "valid"), [
    ("", True), ("  ", True), ("mon-fri 07:00-21:00", True), ("MONDAY - Wednesday 7:05 -24:00 ,sun 18:00-23:59", True),
    ("07:00-21:00,", False), ("mon 24:00-01:00", False), ("mon 07:60-08:00", False), ("mo 07:00-08:00", False),
    ("mon07:00-08:00", False), ("07:00-08:00\x00", False),
])
def test_the_trading_hours_pattern_follows_the_parsers_grammar(value, valid):
    schema = as_json_schema(value_schema("trading_hours", "trading_hours"))
    assert jsonschema.Draft4Validator(schema).is_valid(value) is valid


@pytest.mark.parametrize(("value", "valid"), [
    (["btc", "BINANCE:BTCUSDT.P", " ethusdt.perp "], True), ("BTC, eth  SOLUSDT,", True), ("", True), ([], True),
    (["BTC/USDT"], False), (["BTC,ETH"], False), ("BTC;ETH", False), ([5], False), (["B"], False),
])
def test_the_product_pattern_follows_the_parser(value, valid):
    assert jsonschema.Draft4Validator(as_json_schema(value_schema("product", "products"))).is_valid(value) is valid


def test_whitespace_in_patterns_is_pythons_whitespace():
    spaces = {chr(code) for code in range(0x110000) if chr(code).isspace()}
    assert all(jsonschema.Draft4Validator({"pattern": f"^[{SPACE}]$"}).is_valid(space) for space in spaces)
    assert not jsonschema.Draft4Validator({"pattern": NOT_BLANK}).is_valid("".join(spaces))
    assert jsonschema.Draft4Validator({"pattern": NOT_BLANK}).is_valid("\ufeff")  # not whitespace to str.strip()


@pytest.fixture
def admin_api(django_user_model) -> Client:
    from rest_framework.test import APIClient

    from alsatrade.api_tokens import api_token_create

    client = APIClient()
    admin = django_user_model.objects.create_superuser("boss", password="a-boss-password")
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=admin)[1]}")
    return client
