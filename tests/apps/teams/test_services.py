"""Teams and members changed through apps.teams.services: audited, and never left without an
admin."""

import pytest

from apps.accounts.models import Membership, Role
from apps.audit.models import AuditEntry
from apps.core.exceptions import InvalidTransition, NotFound, ValidationFailed
from apps.teams.services import (
    member_add,
    member_remove,
    member_role_set,
    membership_get,
    team_add,
    team_update,
)
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    team = TeamFactory(name="ops")
    MembershipFactory(team=team, user=UserFactory(username="ana"), role=Role.ADMIN)
    return team


def audited(team_id):
    return list(
        AuditEntry.objects.filter(team_id=team_id)
        .order_by("id")
        .values_list("action", "object_type", "changes")
    )


def test_members_are_added_re_roled_and_removed_each_change_audited(team):
    actor = UserFactory(username="boss", is_superuser=True)
    UserFactory(username="ben")

    added = member_add(team=team, username="ben", role=Role.VIEWER, actor=actor)
    member_role_set(membership=added, role=Role.ADMIN, actor=actor)
    member_remove(membership=membership_get(team=team, username="ana"), actor=actor)

    assert list(team.memberships.values_list("user__username", "role")) == [("ben", "admin")]
    assert audited(team.id) == [
        ("create", "membership", {"role": {"old": None, "new": "viewer"}}),
        ("update", "membership", {"role": {"old": "viewer", "new": "admin"}}),
        ("delete", "membership", {"role": {"old": "admin", "new": None}}),
    ]
    assert AuditEntry.objects.filter(actor=actor).count() == 3


@pytest.mark.parametrize(
    "change",
    [
        lambda ana: member_role_set(membership=ana, role=Role.OPERATOR, actor=None),
        lambda ana: member_remove(membership=ana, actor=None),
    ],
    ids=["demote", "remove"],
)
def test_the_last_admin_can_be_neither_demoted_nor_removed(team, change):
    ana = membership_get(team=team, username="ana")

    with pytest.raises(InvalidTransition, match="last admin") as refused:
        change(ana)

    assert refused.value.field == "role"
    assert Membership.objects.get(id=ana.id).role == Role.ADMIN
    assert audited(team.id) == []


@pytest.mark.parametrize(
    ("username", "role", "error", "field"),
    [
        ("nobody", "viewer", ValidationFailed, "username"),
        ("ana", "viewer", InvalidTransition, "username"),  # already a member
        ("ben", "owner", ValidationFailed, "role"),
    ],
)
def test_a_bad_member_is_refused_naming_the_field(team, username, role, error, field):
    UserFactory(username="ben")

    with pytest.raises(error) as refused:
        member_add(team=team, username=username, role=role, actor=None)

    assert refused.value.field == field
    assert team.memberships.count() == 1


def test_teams_are_added_and_their_settings_changed_audited():
    team = team_add(name="data", actor=None)
    team_update(team=team, data={"max_active_schedules": 20}, actor=None)

    with pytest.raises(ValidationFailed) as unknown:
        team_update(team=team, data={"id": 7}, actor=None)
    with pytest.raises(ValidationFailed) as taken:
        team_add(name="data", actor=None)
    with pytest.raises(NotFound):
        membership_get(team=team, username="ana")

    assert (unknown.value.field, taken.value.field) == ("id", "name")
    assert [(action, changes) for action, _, changes in audited(team.id)] == [
        ("create", {}),
        ("update", {"max_active_schedules": {"old": None, "new": 20}}),
    ]
