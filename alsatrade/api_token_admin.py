"""API tokens in the admin: who has one, since when and until when; revoked by deleting. Never the key
(only its digest is stored) and never a new one: knox's own admin shows a new key in a message and
lets anyone with "add token" mint one for any user, a superuser included. Keys come from
`manage.py api_token create`, which needs a shell on the server."""

import knox.admin  # noqa: F401 - its registration must exist before it is replaced below
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from knox.models import AuthToken


class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "created", "expiry"]
    list_select_related = ["user"]
    fields = ("user", "created", "expiry")
    readonly_fields = ("user", "created", "expiry")
    search_fields = ["user__username"]
    ordering = ["-created"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def register_api_tokens(site: admin.AdminSite) -> None:
    if site.is_registered(AuthToken):
        site.unregister(AuthToken)
    site.register(AuthToken, ApiTokenAdmin)
