"""How the API writes money and quantities: Decimal strings without trailing zeros, never floats."""

from decimal import Decimal
from typing import Any

from django.db import models
from rest_framework import serializers


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
