"""How the API writes money and quantities (Decimal strings without trailing zeros, never floats),
and how it reads what it is sent: only what its OpenAPI schema says, so the schema is exact (a
request the schema allows is never a 400, one it refuses never a 2xx; tests/api/test_fuzz.py).
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any

from django.core.paginator import Paginator
from django.db import models
from django.http import QueryDict
from rest_framework import pagination, serializers
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]  # newer than the stubs
from rest_framework.request import Request
from rest_framework.utils import json
from rest_framework.views import APIView


class AmountField(serializers.DecimalField):
    """A Decimal as a plain, normalised string: "45000", "0.111", "0" (not "45000.0000000000", "4.5E+4")."""

    def __init__(self, *, max_digits: int | None = None, decimal_places: int | None = None, **kwargs: Any) -> None:  # noqa: ANN401 - DRF's field options
        kwargs.update(coerce_to_string=True, normalize_output=True)
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def to_representation(self, value: Decimal) -> str:
        text = super().to_representation(value)
        return "0" if text == "-0" else text  # a sum that cancels out can leave a negative zero


class AmountModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose model DecimalFields all come out through AmountField."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping, models.DecimalField: AmountField}


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's numbered pages, taking what the schema says `page` is and nothing else: a whole number
    from 1, written in ASCII digits. DRF itself also reads "last", an empty value as page 1, and
    " 2" or "２" as 2; a page that is not one (0, past the last) is a 404 as in DRF."""

    last_page_strings = ()

    def get_page_number(self, request: Request, paginator: Paginator) -> int | str:
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not (raw.isascii() and raw.isdigit()):
            raise NotFound("Invalid page: a whole number from 1.")
        return raw

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


# Python's whitespace (str.isspace: what strip() removes), spelled out: a schema's `\s` would mean
# another set in each engine that reads the pattern (ECMA-262 in clients, Rust in schemathesis, Python here).
SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Django refuses text with NUL characters (PostgreSQL cannot store them).
NO_NUL = r"^[^\x00]*$"
# The same, not empty: a StrictCharField's default, so that with allow_blank the schema's two
# alternatives (this, or "") never both match.
TEXT = r"^[^\x00]+$"
# Text with something besides whitespace in it, and no NUL.
NOT_BLANK = rf"^[^\x00]*[^\x00{SPACE}][^\x00]*$"


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false: DRF's BooleanField also reads "yes", "on", 1 and "1", which a schema's
    boolean refuses."""

    def to_internal_value(self, data: object) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)
        raise AssertionError  # fail() raises


class StrictCharField(serializers.RegexField):
    """A JSON string as sent (DRF's CharField also takes a number as its text, and trims before it
    measures), matching `regex` (the schema's `pattern`; default: no NUL). "" only with allow_blank."""

    def __init__(self, regex: str = TEXT, **kwargs: Any) -> None:  # noqa: ANN401 - DRF's field options
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(regex, **kwargs)

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


EMPTY_VALUE = "Give a value, or leave the parameter out."


def empty_parameters(params: QueryDict, names: list[str]) -> list[str]:
    """The parameters given as `?status=`: the schema's parameters are a value or absent, where
    Django's forms and django-filter would read an empty one as "no filter"."""
    return [name for name in names if "" in params.getlist(name)]


def refuse_empty_values(params: QueryDict, names: list[str]) -> None:
    empty = empty_parameters(params, names)
    if empty:
        raise ValidationError({name: [EMPTY_VALUE] for name in empty})


class DecimalJSONParser(JSONParser):
    """JSON with its fractions read as Decimal, exactly as written: 0.1 stays 0.1, and 28 digits stay
    28 (a float keeps about 16)."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:  # noqa: ANN401 - any JSON
        # DRF's own choice of charset (it refuses codecs such as bz2 that would inflate a small body).
        encoding = get_encoding(parser_context or {})
        try:
            return json.loads(stream.read().decode(encoding), parse_float=Decimal, parse_constant=json.strict_constant)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
