"""Users the preference tests act as."""

from django.contrib.auth.models import AbstractUser, Permission


def strategy_editor(user_model: type[AbstractUser], username: str = "editor", password: str = "an-editor-password",
                    *, is_staff: bool = True) -> AbstractUser:
    """A user allowed to add and change strategies, and nothing else."""
    user = user_model.objects.create_user(username, password=password, is_staff=is_staff)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="preferences", codename__in=["change_strategypreference", "add_strategypreference"]))
    return user
