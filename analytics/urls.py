from django.urls import path

from analytics import performance_views, views

app_name = "ui"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("halt/", views.halt_change, name="halt"),
    path("executions/", views.execution_list, name="executions"),
    path("executions/<int:execution_id>/", views.execution_detail, name="execution"),
    path("signals/", views.signal_list, name="signals"),
    path("analytics/", performance_views.analytics, name="analytics"),
    path("account/", performance_views.account_history, name="account"),
    path("accounts/", views.account_list, name="accounts"),
    path("accounts/<str:name>/halt/", views.account_halt_change, name="account-halt"),
    path("replay/", views.replay_page, name="replay"),
    path("replay/<int:run_id>/", views.replay_run, name="replay-run"),
    path("replay/<int:run_id>/delete/", views.replay_delete, name="replay-delete"),
]
