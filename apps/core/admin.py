"""What the admin pages of dts's models share."""

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin
from django.forms import BaseFormSet
from django.http import HttpRequest


class SavedByServicesAdmin(admin.ModelAdmin):
    """A team's object edited with its parts inline (a workflow's steps, a webhook's entries)
    and saved as a whole by its services (checked and audited there), from `save_related`,
    which each admin writes: the admin's own saves of the object and its inlines do nothing.
    Its team is set when it is made, and shown after."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["team"] if obj else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Saved with its inlines, by save_related."""

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Saved with the object, by save_related."""

    def construct_change_message(
        self,
        request: HttpRequest,
        form: forms.Form,
        formsets: "Iterable[BaseFormSet[Any]]",
        add: bool = False,
    ) -> list[dict[str, dict[str, list[str]]]]:
        """The admin's log entry, without the inline forms (saved by the services, not by them)."""
        return super().construct_change_message(request, form, [], add)
