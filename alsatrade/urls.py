from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from alsatrade.api_docs import ApiDocsView, ApiSchemaView
from alsatrade.health import health
from analytics.api import AccountHistory, AnalyticsSummary, ReplayDetail, ReplayList
from preferences.api import PreferenceChange, PreferenceList
from trading.api import AccountHalt, AccountList, AccountSummary, ExecutionList, Halt, OrderList, PositionList, SignalList
from trading.webhook import WebhookView

admin.site.site_header = "Alsa Trade"
admin.site.site_title = "Alsa Trade admin"

urlpatterns = [
    path("", RedirectView.as_view(url="/ui/", permanent=False), name="home"),
    path("ui/strategies/", include("preferences.urls")),
    path("ui/", include("analytics.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("health", health, name="health"),
    # Both spellings: a redirect from one to the other would lose a POST's body.
    path("webhook", WebhookView.as_view(), name="webhook"),
    path("webhook/", WebhookView.as_view()),
    # REST API (the contract in DESIGN.md §2); the OpenAPI schema and its Swagger UI describe it.
    path("executions", ExecutionList.as_view(), name="api-executions"),
    path("signals", SignalList.as_view(), name="api-signals"),
    path("orders", OrderList.as_view(), name="api-orders"),
    path("positions", PositionList.as_view(), name="api-positions"),
    path("account/summary", AccountSummary.as_view(), name="api-account-summary"),
    path("account/history", AccountHistory.as_view(), name="api-account-history"),
    path("analytics/summary", AnalyticsSummary.as_view(), name="api-analytics-summary"),
    path("replay", ReplayList.as_view(), name="api-replays"),
    path("replay/<str:run_id>", ReplayDetail.as_view(), name="api-replay"),
    path("halt", Halt.as_view(), name="api-halt"),
    path("accounts", AccountList.as_view(), name="api-accounts"),
    path("accounts/<str:name>/halt", AccountHalt.as_view(), name="api-account-halt"),
    path("preferences/current", PreferenceList.as_view(), name="api-preferences"),
    path("preferences/<str:type>", PreferenceChange.as_view(), name="api-preference-change"),
    # Both behind a login (session or API token): alsatrade/api_docs.py.
    path("api/schema/", ApiSchemaView.as_view(), name="api-schema"),
    # Its set-up script is served as a file (?script), not inline: the Content-Security-Policy allows no inline script.
    path("api/docs/", ApiDocsView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
]
