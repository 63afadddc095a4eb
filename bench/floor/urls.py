"""/webhook (the floor view, under the real path so the load scripts are the same) and /health."""

from django.urls import path

from floor.views import health, receive

urlpatterns = [
    path("webhook", receive),
    path("health", health),
]
