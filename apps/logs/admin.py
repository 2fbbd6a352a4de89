from django.contrib import admin

from apps.logs.models import IndexFailure


@admin.register(IndexFailure)
class IndexFailureAdmin(admin.ModelAdmin):
    list_display = ["failed_at", "index", "document_id", "status", "reason"]
    search_fields = ["document_id", "reason"]
    readonly_fields = [field.name for field in IndexFailure._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
