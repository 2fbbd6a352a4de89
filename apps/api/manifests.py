"""Jobs as code (docs/cli.md): /api/v1/apply/ takes a whole set of declared jobs with their
schedules and applies it in one transaction; /api/schema/manifest/ is the JSON Schema of one
declared job, the document a file of `dts apply` holds."""

import functools
from typing import Any

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role, Team
from apps.accounts.selectors import user_teams
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import BooleanValue, TextField
from apps.api.jobs import JobDefinitionSerializer
from apps.api.permissions import role_require
from apps.api.schedules import ScheduleTimingSerializer
from apps.api.workflows import StepSerializer, WorkflowCreateSerializer
from apps.core.exceptions import ValidationFailed
from apps.jobs.models import OverlapPolicy
from apps.manifests.services import (
    UNCHANGED,
    JobDeclaration,
    WorkflowDeclaration,
    declarations_apply,
)
from apps.workflows.services import MAX_SCHEDULES, MAX_STEPS

# What a document declares, and what a change is of (the schema's enums, by these names).
JOB_DOCUMENT_KINDS = ["job"]
WORKFLOW_DOCUMENT_KINDS = ["workflow"]
CHANGE_KINDS = ["job", "schedule", "workflow"]
MAX_DOCUMENTS = 1000
MAX_SCHEDULES_PER_JOB = 100
# The components of the OpenAPI document that the manifest's JSON Schema is made of.
DOCUMENT_COMPONENTS = ["JobDocumentRequest", "WorkflowDocumentRequest"]


class StrictSerializer(serializers.Serializer[Any]):
    """Refuses a field it does not know, naming it: in a declaration, a misspelt field would
    otherwise pass unseen and leave the default in its place."""

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        problems = {str(name): ["Unknown field."] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if problems and isinstance(error.detail, dict):
                raise serializers.ValidationError({**error.detail, **problems}) from error
            raise
        if problems:
            raise serializers.ValidationError(problems)
        return value


class ScheduleDocumentSerializer(StrictSerializer, ScheduleTimingSerializer):
    pass


class JobDocumentSerializer(StrictSerializer, JobDefinitionSerializer):
    """A declared job, matched by its team and name, with its schedules."""

    kind = serializers.ChoiceField(
        choices=JOB_DOCUMENT_KINDS,
        required=False,
        help_text="What the document declares (default: job).",
    )
    team = TextField(max_length=100, help_text="The name of the owning team.")
    enabled = BooleanValue(
        required=False, help_text="Left out: as it is (pausing and resuming change it)."
    )
    schedules = ScheduleDocumentSerializer(  # type: ignore[call-arg]
        many=True,
        required=False,
        max_length=MAX_SCHEDULES_PER_JOB,
        help_text="All the job's schedules ([]: none). Left out: the job keeps its own.",
    )


class StepDocumentSerializer(StrictSerializer, StepSerializer):
    pass


class WorkflowDocumentSerializer(StrictSerializer, WorkflowCreateSerializer):
    """A declared workflow, matched by its team and name: all its steps, each naming a job of
    the team (one the same set declares included)."""

    kind = serializers.ChoiceField(choices=WORKFLOW_DOCUMENT_KINDS)
    steps = StepDocumentSerializer(many=True, max_length=MAX_STEPS)  # type: ignore[call-arg]
    schedules = ScheduleDocumentSerializer(  # type: ignore[call-arg]
        many=True,
        required=False,
        max_length=MAX_SCHEDULES,
        help_text="All the workflow's schedules ([]: none). Left out: it keeps its own.",
    )


DOCUMENT_SERIALIZERS: dict[str, type[serializers.Serializer[Any]]] = {
    "job": JobDocumentSerializer,
    "workflow": WorkflowDocumentSerializer,
}


class ApplyBodySerializer(StrictSerializer):
    """The body, each document read on its own (JobDocumentSerializer): the faults of every
    document are found, those of its shape and those its values meet in the services."""

    documents = serializers.ListField(child=serializers.JSONField(), max_length=MAX_DOCUMENTS)
    prune = BooleanValue(
        default=False, help_text="Delete the jobs of the documents' teams that none declares."
    )
    dry_run = BooleanValue(default=False, help_text="Say what would change, and change nothing.")


class ApplySerializer(ApplyBodySerializer):
    """The body, as the OpenAPI document shows it."""

    documents = serializers.ListField(
        child=PolymorphicProxySerializer(
            component_name="Document",
            serializers=[JobDocumentSerializer, WorkflowDocumentSerializer],
            resource_type_field_name=None,
        ),
        max_length=MAX_DOCUMENTS,
    )


class ChangeSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=CHANGE_KINDS)
    action = serializers.ChoiceField(choices=["created", "configured", "unchanged", "deleted"])
    team = serializers.CharField()
    name = serializers.CharField(
        help_text="The job's or workflow's name (for a schedule, its job's)."
    )
    id = serializers.IntegerField(
        allow_null=True, help_text="Null for what a dry run would create."
    )
    before = serializers.JSONField(allow_null=True, help_text="Its definition; null if new.")
    after = serializers.JSONField(allow_null=True, help_text="Its definition; null if deleted.")


class ApplyResultSerializer(serializers.Serializer[Any]):
    dry_run = serializers.BooleanField()
    changed = serializers.BooleanField(help_text="Whether anything was (or would be) changed.")
    changes = ChangeSerializer(many=True, help_text="Every declared object, and every pruned one.")


def flat_errors(detail: Any, path: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {"documents[1].schedules[0].kind": [message, …]}."""
    if isinstance(detail, dict):
        found: dict[str, list[str]] = {}
        for name, value in detail.items():
            if isinstance(name, int):  # a list's item
                inner = f"{path}[{name}]"
            else:
                inner = path if name == "non_field_errors" else f"{path}.{name}".lstrip(".")
            found.update(flat_errors(value, inner))
        return found
    if isinstance(detail, list) and not all(isinstance(item, str) for item in detail):
        found = {}
        for index, item in enumerate(detail):
            found.update(flat_errors(item, f"{path}[{index}]"))
        return found
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {path: messages} if messages else {}


def _document_order(path: str) -> tuple[int, str]:
    """Errors in the order of their documents (documents[10] after documents[9])."""
    number = path.removeprefix("documents[").partition("]")[0]
    return (int(number) if number.isdigit() else -1, path)


def refusal(errors: dict[str, list[str]]) -> ValidationFailed:
    path, messages = next(iter(errors.items()))
    return ValidationFailed(messages[0], field=path or None, extra={"errors": errors})


def declaration_of(
    document: dict[str, Any], *, where: str, team: Team
) -> JobDeclaration | WorkflowDeclaration:
    if document.get("kind") == "workflow":
        return WorkflowDeclaration(
            where=where,
            team=team,
            name=document["name"],
            description=document.get("description", ""),
            overlap_policy=document.get("overlap_policy", OverlapPolicy.ALLOW),
            steps=document["steps"],
            schedules=document.get("schedules"),
        )
    fields = {
        name: value for name, value in document.items() if name not in ("kind", "team", "schedules")
    }
    return JobDeclaration(
        where=where,
        team=team,
        name=document["name"],
        fields=fields,
        schedules=document.get("schedules"),
    )


class ApplyView(APIView):
    @extend_schema(
        operation_id="apply",
        request=ApplySerializer,
        responses={200: ApplyResultSerializer, **ERROR_RESPONSES},
        description="Create and change the declared jobs with their schedules, and with `prune` "
        "delete the jobs of the documents' teams that none declares: all of it, or nothing when "
        "anything is refused (`errors` then names every field at fault, by its path in the "
        "body). Needs the admin role in every team named.",
    )
    def post(self, request: Request) -> Response:
        body = ApplyBodySerializer(data=request.data)
        if not body.is_valid():
            raise refusal(flat_errors(body.errors))
        options = body.validated_data
        documents, errors = {}, {}
        for index, given in enumerate(options["documents"]):
            kind = given.get("kind") if isinstance(given, dict) else None
            # Any other kind (or none) is read as a job's, whose `kind` field refuses it.
            serializer = DOCUMENT_SERIALIZERS.get(kind if isinstance(kind, str) else "job")
            document = (serializer or JobDocumentSerializer)(data=given)
            if document.is_valid():
                documents[index] = document.validated_data
            else:
                errors.update(flat_errors(document.errors, f"documents[{index}]"))
        names = {document["team"] for document in documents.values()}
        teams = {team.name: team for team in user_teams(user=request.user).filter(name__in=names)}
        for index, document in documents.items():
            if document["team"] not in teams:
                errors[f"documents[{index}].team"] = ["No team of yours has this name."]
        for team in teams.values():
            role_require(request, team_id=team.id, role=Role.ADMIN)
        declarations = [
            declaration_of(document, where=f"documents[{index}]", team=teams[document["team"]])
            for index, document in documents.items()
            if document["team"] in teams
        ]
        try:
            changes = declarations_apply(
                declarations=declarations,
                prune=options["prune"],
                dry_run=options["dry_run"] or bool(errors),
                actor=request.user,
            )
        except ValidationFailed as refused:
            errors.update(refused.extra["errors"])
        if errors:
            raise refusal(dict(sorted(errors.items(), key=lambda item: _document_order(item[0]))))
        result = {
            "dry_run": options["dry_run"],
            "changed": any(change.action != UNCHANGED for change in changes),
            "changes": changes,
        }
        return Response(ApplyResultSerializer(result).data)


class ManifestSchemaView(APIView):
    """The JSON Schema (2020-12) of one document of a `dts apply` file, for editors and CI
    checks; made from the OpenAPI document's own components, so the two cannot differ."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(manifest_schema())


@functools.cache
def manifest_schema() -> dict[str, Any]:
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    wanted, found = list(DOCUMENT_COMPONENTS), {}
    while wanted:
        name = wanted.pop()
        if name not in found:
            found[name] = _json_schema(components[name], refs=wanted)
            if found[name].get("type") == "object":
                found[name]["additionalProperties"] = False
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/api/schema/manifest/",
        "title": "A job or a workflow declared for dts apply",
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in DOCUMENT_COMPONENTS],
        "$defs": found,
    }


def _json_schema(node: Any, *, refs: list[str]) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable` becomes a null type, and a component's
    reference points into `$defs` (each one referred to is added to `refs`)."""
    if isinstance(node, list):
        return [_json_schema(item, refs=refs) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        name: _json_schema(value, refs=refs)
        for name, value in node.items()
        if name not in ("nullable", "readOnly", "writeOnly")
    }
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.removeprefix("#/components/schemas/")
        refs.append(name)
        converted["$ref"] = f"#/$defs/{name}"
    if node.get("nullable"):
        converted = {"anyOf": [converted, {"type": "null"}]}
    return converted
