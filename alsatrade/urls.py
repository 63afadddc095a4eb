from django.contrib import admin
from django.urls import path

from alsatrade.health import health
from trading.webhook import WebhookView

admin.site.site_header = "Alsa Trade"
admin.site.site_title = "Alsa Trade admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health, name="health"),
    # Both spellings: a redirect from one to the other would lose a POST's body.
    path("webhook", WebhookView.as_view(), name="webhook"),
    path("webhook/", WebhookView.as_view()),
]
