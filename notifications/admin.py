from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import URLPattern, path

from alsatrade.admin import ReadOnlyAdmin
from notifications.channels import DeliveryError
from notifications.delivery import channel_try
from notifications.forms import SECRET_FIELDS, ChannelForm
from notifications.models import Channel, Notification, masked


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "enabled", "scope", "destination", "events"]
    list_filter = ["kind", "enabled", "strategy"]
    search_fields = ["name"]
    list_select_related = ["strategy"]
    actions = ["send_test_message"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled", "strategy"]}),
        ("Telegram", {"fields": ["telegram_bot_token", "telegram_chat_id"]}),
        ("Discord", {"fields": ["discord_webhook_url"]}),
        ("E-mail", {"fields": ["email_to"]}),
        ("Events told", {"fields": list(Channel.TOGGLES.values())}),
    ]

    def get_form(self, request: HttpRequest, obj: Channel | None = None, change: bool = False,
                 **kwargs: object) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        for name in SECRET_FIELDS:  # the password inputs stay empty: say what is stored, masked
            if obj is not None and getattr(obj, name):
                form.base_fields[name].help_text = f"Stored: {masked(getattr(obj, name))}. Leave blank to keep it."
        return form

    @admin.display(description="scope")
    def scope(self, obj: Channel) -> str:
        return obj.strategy.name if obj.strategy else "all strategies"

    @admin.display(description="events")
    def events(self, obj: Channel) -> str:
        told = [event.label.split(" (")[0].lower() for event, field in Channel.TOGGLES.items() if getattr(obj, field)]
        return ", ".join(told) or "none"

    @admin.action(description="Send a test message", permissions=["change"])
    def send_test_message(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            self._try(request, channel)

    def get_urls(self) -> list[URLPattern]:
        test = path("<int:channel_id>/test/", self.admin_site.admin_view(self.test_view), name="notifications_channel_test")
        return [test, *super().get_urls()]

    def test_view(self, request: HttpRequest, channel_id: int) -> HttpResponse:
        """The change page's "Send test message" button."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        channel = get_object_or_404(Channel, pk=channel_id)
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        self._try(request, channel)
        return redirect("admin:notifications_channel_change", channel.pk)

    def _try(self, request: HttpRequest, channel: Channel) -> None:
        try:
            channel_try(channel)
        except DeliveryError as error:  # already redacted
            self.message_user(request, f"{channel}: the test message failed: {error}", messages.ERROR)
        else:
            self.message_user(request, f"{channel}: test message sent.", messages.SUCCESS)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "event_type", "channel", "status", "attempts", "next_attempt_at", "sent_at", "last_error"]
    list_filter = ["status", "event_type", "channel"]
    search_fields = ["text", "last_error"]
    date_hierarchy = "created_at"
    list_select_related = ["channel"]
    raw_id_fields = ["execution"]
