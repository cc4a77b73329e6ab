from django.contrib import admin

from monitoring.models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("key", "level", "message", "started_at", "resolved_at")
    list_filter = ("level", "key")
    search_fields = ("key", "message")
    readonly_fields = ("key", "level", "message", "details", "started_at", "resolved_at", "notified")

    def has_add_permission(self, request) -> bool:
        return False
