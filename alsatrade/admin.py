from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records written by the system (signals, orders, executions): looked at, never edited."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
