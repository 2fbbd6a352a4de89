"""Webhooks in the admin: a webhook with what it is told of inline, checked and saved through the
services (audited; the secret is write-only), and its delivery log, read-only, with failed
deliveries sent again on demand."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from apps.core.admin import SavedByServicesAdmin
from apps.core.exceptions import ApplicationError
from apps.notifications.addresses import webhook_url_check
from apps.notifications.models import (
    DELIVERY_LOG_FIELDS,
    Delivery,
    DeliveryState,
    NotifyOn,
    Webhook,
    WebhookRule,
)
from apps.notifications.services import (
    MIN_SECRET_CHARS,
    delivery_redeliver,
    webhook_create,
    webhook_delete,
    webhook_notify_resolved,
    webhook_update,
)


class WebhookForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        min_length=MIN_SECRET_CHARS,
        help_text="The key deliveries are signed with. Left empty on a change: kept as it is.",
    )

    class Meta:
        model = Webhook
        fields = ["team", "name", "url", "secret", "enabled"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            webhook_url_check(url)
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from error
        return url

    def clean_secret(self) -> str:
        secret: str = self.cleaned_data.get("secret") or ""
        if not secret and self.instance.pk is None:
            raise forms.ValidationError("A new webhook needs its secret.")
        return secret or self.instance.secret


class RuleForm(forms.ModelForm):
    on = forms.MultipleChoiceField(choices=NotifyOn.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookRule
        fields = ["job", "workflow", "on"]


class RuleFormSet(BaseInlineFormSet):
    def notify(self) -> list[dict[str, Any]]:
        """The entries the forms define (deleted ones left out), each naming its job or
        workflow, as the API takes them."""
        entries = []
        for form in self.forms:
            data = form.cleaned_data
            if not data or data.get("DELETE"):
                continue
            target = {"job": data["job"].name} if data.get("job") else {}
            if data.get("workflow"):
                target["workflow"] = data["workflow"].name
            entries.append({**target, "on": list(data.get("on") or [])})
        return entries

    def clean(self) -> None:
        """Refused as the services refuse them, under the entry's form."""
        super().clean()
        if any(self.errors) or self.instance.team_id is None:
            return
        kept = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        try:
            webhook_notify_resolved(self.instance.team, self.notify())
        except ApplicationError as error:
            field = error.field or ""
            if field.startswith("notify["):
                index, _, name = field.removeprefix("notify[").partition("]")
                name = name.removeprefix(".")
                form = kept[int(index)]
                form.add_error(name if name in form.fields else None, error.message)
                return
            raise forms.ValidationError(error.message) from error


class RuleInline(admin.TabularInline):
    model = WebhookRule
    form = RuleForm
    formset = RuleFormSet
    fields = ["job", "workflow", "on"]
    extra = 1
    autocomplete_fields = ["job", "workflow"]


@admin.register(Webhook)
class WebhookAdmin(SavedByServicesAdmin):
    form = WebhookForm
    list_display = ["name", "team", "url", "enabled", "updated_at"]
    list_filter = ["team", "enabled"]
    search_fields = ["name", "url"]
    inlines = [RuleInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        webhook = form.instance
        data = {
            "name": webhook.name,
            "url": webhook.url,
            "secret": form.cleaned_data["secret"],
            "enabled": webhook.enabled,
            "notify": webhook_notify_resolved(webhook.team, formsets[0].notify()),
        }
        if change:
            webhook_update(
                webhook=Webhook.objects.get(pk=webhook.pk), data=data, actor=request.user
            )
        else:
            webhook.pk = webhook_create(team=webhook.team, actor=request.user, **data).pk

    def delete_model(self, request: HttpRequest, obj: Webhook) -> None:
        webhook_delete(webhook=obj, actor=request.user)


DELIVERY_FIELDS = ("webhook", *DELIVERY_LOG_FIELDS)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "webhook",
        "event",
        "state",
        "attempts",
        "response_status",
        "next_attempt_at",
    ]
    list_filter = ["state", "event", "webhook__team"]
    list_select_related = ["webhook"]
    search_fields = ["webhook__name", "key"]
    actions = ["redeliver"]
    fields = readonly_fields = DELIVERY_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Send again (failed ones)")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        for delivery in queryset.filter(state=DeliveryState.FAILED):
            delivery_redeliver(delivery=delivery)
        messages.success(request, "The failed deliveries are sent again.")
