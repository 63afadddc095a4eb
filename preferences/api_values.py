"""What `POST /preferences/{type}` takes as `value` for each type: one JSON schema per type, published
in the OpenAPI schema (alsatrade/openapi.py) and enforced here before the form sees the value.

So a value the schema refuses is a 400, and one it allows reaches the admin's form, which may still
refuse it for the state of things (a symbol the exchange does not list, a window that starts where
it ends): a 400 too, naming it (schemathesis.toml tells `st run` so for those types). Most
schemas follow the model field (bounds from its validators, null from `null=True`); the types whose
JSON is not the field's value are spelled out.

The patterns avoid `\\s`, `\\d` and a bare `$` after text, which mean different things in Python's,
Rust's (schemathesis) and ECMA-262's (clients') regular expressions.
"""

import copy
import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from rest_framework.exceptions import ValidationError

from alsatrade.api_fields import NO_NUL, SPACE
from preferences.models import StrategyPreference
from preferences.trading_hours import DAY_NAMES, DAYS

_W = f"[{SPACE}]"
_TRUE_OR_FALSE = f"^{_W}*(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]){_W}*$"
BOOLEAN_WORD = {"type": "string", "pattern": _TRUE_OR_FALSE}
# As the products parser reads them (preferences/forms.py): BTCUSDT, btc, BTCUSDT.P, BINANCE:BTCUSDT.P.
_SYMBOL = r"(?:[A-Za-z0-9_]+:)?[A-Za-z0-9]{2,30}(?:\.[Pp]|\.[Pp][Ee][Rr][Pp])?"
_SEPARATOR = f"[{SPACE},]"


def _any_case(word: str) -> str:
    return "".join(f"[{letter}{letter.upper()}]" for letter in word)


_DAY = "(?:" + "|".join(_any_case(name) for name in (*DAY_NAMES, *DAYS)) + ")"
_START = "(?:[01]?[0-9]|2[0-3]):[0-5][0-9]"
_WINDOW = f"(?:{_DAY}(?:{_W}*-{_W}*{_DAY})?{_W}+)?{_START}{_W}*-{_W}*(?:{_START}|24:00)"

SPELLED_OUT: dict[str, dict[str, Any]] = {
    "product": {
        "description": 'Symbols, as a list or one comma- or space-separated string: ["BTCUSDT", "ETHUSDT"], '
        '"BTC, ETH", "BINANCE:BTCUSDT.P"; each must trade on the exchange (else 400 naming it). [] or "": none.',
        "oneOf": [
            {"type": "array", "maxItems": 200, "items": {"type": "string", "pattern": f"^{_W}*{_SYMBOL}{_W}*$"}},
            {"type": "string", "maxLength": 2000,
             "pattern": f"^{_SEPARATOR}*(?:{_SYMBOL}(?:{_SEPARATOR}+{_SYMBOL})*{_SEPARATOR}*)?$"},
        ],
    },
    "strategy": {"description": "true or false (also as a string)", "oneOf": [{"type": "boolean"}, BOOLEAN_WORD]},
    "sync_to_alert": {"description": "true or false (also as a string)", "oneOf": [{"type": "boolean"}, BOOLEAN_WORD]},
    "drawdown_lock": {
        "description": "null or false (also as a string) lifts the lock, true locks now",
        "oneOf": [{"type": "boolean", "nullable": True}, BOOLEAN_WORD],
    },
    "take_profit": {
        "description": 'a take-profit, % from the entry (a number from 0 to 1000, 0 or null: none); or a ladder of 1 to '
        '5 levels, [{"pct": 2, "share": 50}, {"pct": 4, "share": 50}]: each pct above 0 and at most 1000, nearest '
        "first, each share above 0 and at most 100 (% of the position), the shares summing to 100",
        "oneOf": [
            {"type": "number", "minimum": 0, "maximum": 1000, "nullable": True},
            {"type": "array", "minItems": 1, "maxItems": 5, "items": {
                "type": "object", "required": ["pct", "share"], "additionalProperties": False,
                "properties": {"pct": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1000},
                               "share": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 100}}}},
        ],
    },
    "trailing_stop": {
        "description": 'a trailing stop, {"callback": 1.0, "activation_pct": 2}: callback 0.1 to 10 (%, in steps of '
        "0.1, Binance's range) from the best price since activation, activation_pct 0 to 100 (% from the entry; "
        "left out or 0: at once); or null, none",
        "type": "object", "nullable": True, "required": ["callback"], "additionalProperties": False,
        "properties": {"callback": {"type": "number", "minimum": 0.1, "maximum": 10},
                       "activation_pct": {"type": "number", "minimum": 0, "maximum": 100, "nullable": True}},
    },
    "trading_hours": {
        "description": 'UTC windows, e.g. "mon-fri 07:00-21:00, sun 18:00-23:59"; "": always',
        "type": "string", "maxLength": 200, "pattern": f"^{_W}*(?:{_WINDOW}(?:{_W}*,{_W}*{_WINDOW})*{_W}*)?$",
    },
}


def value_schema(kind: str, field_name: str) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of `value` for a preference type."""
    if kind in SPELLED_OUT:
        return copy.deepcopy(SPELLED_OUT[kind])
    field = StrategyPreference._meta.get_field(field_name)
    assert isinstance(field, models.Field)
    if isinstance(field, models.BooleanField):
        schema: dict[str, Any] = {"type": "boolean", "description": "true or false"}
    elif field.choices:
        values = [str(value) for value, _label in field.choices]
        schema = {"type": "string", "enum": values, "description": f"one of {', '.join(values)}"}
    elif isinstance(field, (models.IntegerField, models.DecimalField)):
        schema = _number_schema(field)
    elif isinstance(field, models.CharField):
        schema = {"type": "string", "maxLength": field.max_length, "pattern": NO_NUL,
                  "description": f"text, at most {field.max_length} characters"}
    else:
        raise LookupError(f"preference type {kind!r}: no value schema for a {type(field).__name__}; spell it out above.")
    if field.null:
        schema["nullable"] = True
        schema["description"] += ", or null"
    return schema


def _number_schema(field: models.IntegerField | models.DecimalField) -> dict[str, Any]:
    lows = [validator.limit_value for validator in field.validators if isinstance(validator, MinValueValidator)]
    highs = [validator.limit_value for validator in field.validators if isinstance(validator, MaxValueValidator)]
    if isinstance(field, models.DecimalField):
        # A power of ten below the column's digits: a float that large still rounds within them.
        top = Decimal(10) ** (field.max_digits - field.decimal_places - 1)
        low, high = max([-top, *lows]), min([top, *highs])
        # Bounds of a schema, not money: the OpenAPI document is JSON, whose numbers clients read as
        # floats anyway; as_json_schema below reads them back exactly (by their shortest repr).
        return {"type": "number", "minimum": float(low), "maximum": float(high),
                "description": f"a number from {low} to {high}, kept to {field.decimal_places} decimals"}
    # The column's own range, whichever database this process uses: the schema is one for all.
    column_low, column_high = BaseDatabaseOperations.integer_field_ranges[field.get_internal_type()]
    low, high = max([column_low, *lows]), min([column_high, *highs])
    return {"type": "integer", "minimum": low, "maximum": high, "description": f"a whole number from {low} to {high}"}


def value_read(kind: str, field_name: str, value: object) -> object:
    """The value as the form takes it, or a 400 naming the type when the schema refuses it."""
    schema = value_schema(kind, field_name)
    if not jsonschema.Draft4Validator(as_json_schema(schema)).is_valid(value):
        shown = str(value) if isinstance(value, Decimal) else json.dumps(value, cls=DjangoJSONEncoder)
        raise ValidationError({kind: [f"{shown[:200]} is not {schema['description']}."]})
    field = StrategyPreference._meta.get_field(field_name)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool) and isinstance(field, models.DecimalField):
        return Decimal(value).quantize(Decimal(1).scaleb(-field.decimal_places), rounding=ROUND_HALF_EVEN)
    return value


def as_json_schema(schema: Any) -> Any:  # noqa: ANN401 - any part of a schema
    """OpenAPI 3.0's `nullable` as JSON Schema's `"type": [type, "null"]`, throughout; a float bound as
    the Decimal it is written as, to compare exactly with a body's Decimals (DecimalJSONParser): a
    client's float is above a bound's float exactly when its shortest form is above the bound's."""
    if isinstance(schema, list):
        return [as_json_schema(item) for item in schema]
    if isinstance(schema, float):
        return Decimal(repr(schema))
    if not isinstance(schema, dict):
        return schema
    converted = {key: as_json_schema(item) for key, item in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in schema:
        converted["type"] = [schema["type"], "null"]
    return converted
