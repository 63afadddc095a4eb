from django.contrib import admin
from django.urls import path

from alsatrade.health import health

admin.site.site_header = "Alsa Trade"
admin.site.site_title = "Alsa Trade admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health, name="health"),
]
