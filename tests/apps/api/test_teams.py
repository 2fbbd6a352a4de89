"""/api/v1/teams/: each team with the user's role in it, read in one query for them all."""

import pytest

from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("viewer", [("red", "viewer")]),
        ("other_team", [("blue", "admin")]),
        ("superuser", [("blue", "admin"), ("green", "admin"), ("red", "admin")]),
    ],
)
def test_the_team_list_gives_the_users_role_in_each(world, client_as, actor, expected):
    TeamFactory(name="green")

    listed = client_as(actor).get("/api/v1/teams/").json()

    assert [(team["name"], team["role"]) for team in listed] == expected


def test_the_roles_of_many_teams_take_one_query(world, client_as, django_assert_max_num_queries):
    viewer = client_as("viewer")
    viewer.get("/api/v1/teams/")  # the session and user, read once
    for n in range(10):
        MembershipFactory(team=TeamFactory(name=f"t{n}"), user=world.users["viewer"])

    with django_assert_max_num_queries(6):
        listed = viewer.get("/api/v1/teams/").json()

    assert len(listed) == 11
