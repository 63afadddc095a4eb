from django.urls import path

from analytics import views

app_name = "ui"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("executions/", views.execution_list, name="executions"),
    path("executions/<int:execution_id>/", views.execution_detail, name="execution"),
    path("signals/", views.signal_list, name="signals"),
]
