"""Admin list filters whose choices come from our own configuration, never from what senders typed:
a refused attempt's `strategy` is anyone's text, and a filter listing it would show it to staff."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from preferences.models import StrategyPreference
from trading.models import Signal


class ConfiguredStrategyFilter(admin.SimpleListFilter):
    title = "strategy"
    parameter_name = "strategy"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        names = StrategyPreference.objects.order_by("name").values_list("name", flat=True)
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Signal]) -> QuerySet[Signal]:
        value = self.value()
        return queryset.filter(strategy=value) if value else queryset
