"""Teams and their members: /api/v1/teams/ — who is in a team, with which role (docs/api.md).

Anyone sees the teams they are in, and their members; a team's admins add, re-role and remove
its members; superusers, who run the platform, also create teams and change their settings (the
name, the cap on active schedules). Another team's objects are not found (404)."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Membership, Role, Team
from apps.accounts.selectors import user_roles, user_teams
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import TextField
from apps.api.permissions import role_require
from apps.teams.services import (
    member_add,
    member_remove,
    member_role_set,
    membership_get,
    team_add,
    team_update,
)


class TeamSerializer(serializers.ModelSerializer[Team]):
    role = serializers.SerializerMethodField(help_text="Your role in the team.")

    class Meta:
        model = Team
        fields = ["id", "name", "max_active_schedules", "role"]
        read_only_fields = fields

    def get_role(self, team: Team) -> str | None:
        role = self.context["roles"][team.id]
        return role.value if role else None


def teams_data(request: Request, teams: list[Team]) -> list[dict[str, Any]]:
    """The teams as the API shows them, with the user's role in each (one query for all)."""
    roles = user_roles(user=request.user, team_ids=[team.id for team in teams])
    return TeamSerializer(teams, many=True, context={"roles": roles}).data  # type: ignore[return-value]


class TeamWriteSerializer(serializers.Serializer[Any]):
    name = TextField(max_length=100)
    max_active_schedules = serializers.IntegerField(
        min_value=0, required=False, allow_null=True, help_text="Empty: the platform's default."
    )


class MemberSerializer(serializers.ModelSerializer[Membership]):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role"]
        read_only_fields = fields


class MemberAddSerializer(serializers.Serializer[Any]):
    username = TextField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class RoleSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)


def visible_team(request: Request, team_id: int, *, role: Role | None = None) -> Team:
    """The team, if the user is in it or a superuser (else 404) and, with `role`, holds that
    role in it (else 403)."""
    team = get_object_or_404(user_teams(user=request.user), id=team_id)
    if role is not None:
        role_require(request, team_id=team.id, role=role)
    return team


def superuser_require(request: Request) -> None:
    if not request.user.is_superuser:
        raise exceptions.PermissionDenied("Only a superuser may create teams or change them.")


class TeamListView(APIView):
    @extend_schema(
        operation_id="teams_list", responses={200: TeamSerializer(many=True), **ERROR_RESPONSES}
    )
    def get(self, request: Request) -> Response:
        return Response(teams_data(request, list(user_teams(user=request.user).order_by("name"))))

    @extend_schema(
        operation_id="teams_create",
        request=TeamWriteSerializer,
        responses={201: TeamSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        superuser_require(request)
        body = TeamWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        team = team_add(actor=request.user, **body.validated_data)
        return Response(teams_data(request, [team])[0], status=status.HTTP_201_CREATED)


class TeamDetailView(APIView):
    @extend_schema(
        operation_id="teams_retrieve", responses={200: TeamSerializer, **ERROR_RESPONSES}
    )
    def get(self, request: Request, team_id: int) -> Response:
        return Response(teams_data(request, [visible_team(request, team_id)])[0])

    @extend_schema(
        operation_id="teams_update",
        request=TeamWriteSerializer(partial=True),
        responses={200: TeamSerializer, **ERROR_RESPONSES},
    )
    def patch(self, request: Request, team_id: int) -> Response:
        team = visible_team(request, team_id)
        superuser_require(request)
        body = TeamWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        team = team_update(team=team, data=dict(body.validated_data), actor=request.user)
        return Response(teams_data(request, [team])[0])


class MemberListView(APIView):
    @extend_schema(
        operation_id="teams_members_list",
        responses={200: MemberSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request, team_id: int) -> Response:
        team = visible_team(request, team_id)
        members = team.memberships.select_related("user").order_by("user__username")
        return Response(MemberSerializer(members, many=True).data)

    @extend_schema(
        operation_id="teams_members_create",
        request=MemberAddSerializer,
        responses={201: MemberSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request, team_id: int) -> Response:
        team = visible_team(request, team_id, role=Role.ADMIN)
        body = MemberAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = member_add(team=team, actor=request.user, **body.validated_data)
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    @extend_schema(
        operation_id="teams_members_update",
        request=RoleSerializer,
        responses={200: MemberSerializer, **ERROR_RESPONSES},
    )
    def patch(self, request: Request, team_id: int, username: str) -> Response:
        team = visible_team(request, team_id, role=Role.ADMIN)
        body = RoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = member_role_set(
            membership=membership_get(team=team, username=username),
            role=body.validated_data["role"],
            actor=request.user,
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(operation_id="teams_members_destroy", responses={204: None, **ERROR_RESPONSES})
    def delete(self, request: Request, team_id: int, username: str) -> Response:
        team = visible_team(request, team_id, role=Role.ADMIN)
        member_remove(membership=membership_get(team=team, username=username), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
