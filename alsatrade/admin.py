"""The admin's shared parts: how records are shown (numbers normalised, latency timestamps to the
millisecond), which tables are internal, and the site's own settings (Trading first, "View site" → /ui/)."""

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import django_q.admin  # noqa: F401 - its models must be registered before they are re-registered below
from django.contrib import admin
from django.contrib.admin.options import BaseModelAdmin
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Model
from django.forms import NumberInput
from django.http import HttpRequest
from django.utils import timezone

from alsatrade.api_token_admin import register_api_tokens

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec
    from django.utils.datastructures import _ListOrTuple

Column = str | Callable[[Any], str | bool]

# Apps in the order a trader looks for them on the admin's index; the others follow alphabetically.
APP_ORDER = ["trading", "preferences", "analytics"]


def plain_amount(value: Decimal) -> str:
    """45000.0000000000 → "45000", 0.0010000000 → "0.001"; a zero is "0", never "-0" or "0E-10"."""
    return "0" if value.is_zero() else format(value.normalize(), "f")


def millisecond_time(value: datetime) -> str:
    local = timezone.localtime(value)
    return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d} {local:%Z}"


_COLUMNS: dict[tuple[type[Model], str, bool], Column] = {}


def shown_column(model: type[Model], name: str, *, ms: bool = False) -> Column:
    """A model field as the admin shows it: a DecimalField normalised, a timestamp with `ms` to the
    millisecond; any other name as it is. One callable per field, so the list, the detail page and
    the form's exclusions all see the very same one."""
    key = (model, name, ms)
    if key not in _COLUMNS:
        _COLUMNS[key] = _column(model, name, ms=ms)
    return _COLUMNS[key]


def _column(model: type[Model], name: str, *, ms: bool) -> Column:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    if isinstance(field, models.DecimalField):
        render: Callable[[Any], str] = plain_amount
    elif ms and isinstance(field, models.DateTimeField):
        render = millisecond_time
    else:
        return name

    def show(obj: Model) -> str:
        value = getattr(obj, name)
        return admin.site.empty_value_display if value is None else render(value)

    show.__name__ = name  # the column keeps its CSS class (field-<name>) and help text
    return admin.display(description=field.verbose_name, ordering=name)(show)


def shown_columns(model: type[Model], names: Sequence[Column], ms_fields: Sequence[str] = ()) -> list[Column]:
    shown = [shown_column(model, name, ms=name in ms_fields) if isinstance(name, str) else name for name in names]
    return list(dict.fromkeys(shown))


class AmountInput(NumberInput):
    """A number input that shows a stored Decimal normalised: 10, not 10.0000."""

    def format_value(self, value: Any) -> str | None:  # noqa: ANN401 - whatever the form holds
        return plain_amount(value) if isinstance(value, Decimal) else super().format_value(value)


class DisplayAdmin(admin.ModelAdmin):
    """Lists show money and quantities normalised, and `ms_fields` to the millisecond."""

    ms_fields: Sequence[str] = ()
    formfield_overrides = {models.DecimalField: {"widget": AmountInput}}

    def get_list_display(self, request: HttpRequest) -> list[Column]:
        return shown_columns(self.model, super().get_list_display(request), self.ms_fields)


class ReadOnlyDisplay(BaseModelAdmin):
    """The detail page of a read-only record shows its fields as DisplayAdmin's lists do.

    Django takes callables among `fields` and `readonly_fields` (its admin checks allow them, and
    they show with the field's own CSS class and help text); the type stubs say str only, hence the casts.
    """

    ms_fields: Sequence[str] = ()

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> "_FieldsetSpec":
        fieldsets = [
            (title, {**options, "fields": shown_columns(self.model, cast(Sequence[Column], options["fields"]), self.ms_fields)})
            for title, options in super().get_fieldsets(request, obj)
        ]
        return cast("_FieldsetSpec", fieldsets)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> "_ListOrTuple[str]":
        # The shown callables stand in for model fields: the record's form must leave them out.
        shown = [shown_column(self.model, field.name, ms=field.name in self.ms_fields) for field in self.model._meta.fields]
        return cast("list[str]", [*super().get_readonly_fields(request, obj), *filter(callable, shown)])


class ReadOnlyAdmin(ReadOnlyDisplay, DisplayAdmin):
    """For records written by the system (signals, orders, executions): looked at, never edited."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class InternalAdmin(BaseModelAdmin):
    """Machinery (lanes, heartbeats, paper exchange state, the job queue): superusers only, so a staff
    member's admin shows what they trade with, not how the worker coordinates."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _is_superuser(request)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _is_superuser(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _is_superuser(request) and super().has_delete_permission(request, obj)


def _is_superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


def register_internal(site: admin.AdminSite, app_label: str) -> None:
    """Re-registers an outside app's models (django-q2's queue, schedules and results) as internal."""
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label == app_label and not isinstance(model_admin, InternalAdmin):
            site.unregister(model)
            site.register(model, type(f"Internal{type(model_admin).__name__}", (InternalAdmin, type(model_admin)), {}))


def _ordered_app_list(site: admin.AdminSite) -> Callable[..., list[Any]]:
    alphabetical = site.get_app_list

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = alphabetical(request, app_label)
        rank = {label: position for position, label in enumerate(APP_ORDER)}
        return sorted(apps, key=lambda app: rank.get(app["app_label"], len(APP_ORDER)))

    return get_app_list


register_internal(admin.site, "django_q")
register_api_tokens(admin.site)
# The default site is built by django.contrib.admin itself; only its instance can be told the order.
admin.site.get_app_list = _ordered_app_list(admin.site)  # type: ignore[method-assign]
admin.site.site_url = "/ui/"
