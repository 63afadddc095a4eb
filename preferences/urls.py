from django.urls import path

from preferences import views

app_name = "strategies"

urlpatterns = [
    path("", views.strategy_list, name="list"),
    path("new/", views.strategy_new, name="new"),
    path("<int:strategy_id>/", views.strategy_edit, name="edit"),
    path("<int:strategy_id>/passphrase/", views.passphrase_rotate, name="passphrase"),
    path("<int:strategy_id>/rehearse/", views.alert_rehearse, name="rehearse"),
    path("<int:strategy_id>/drawdown-lock/clear/", views.drawdown_lock_clear, name="drawdown_clear"),
]
