"""Who may do what: teams own jobs, members hold a role in each of their teams, and API tokens let
the CLI act as their user (apps/accounts/permissions.py applies the roles)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    """A member's role in a team; each includes what the ones before it allow."""

    VIEWER = "viewer", "Viewer: reads"
    OPERATOR = "operator", "Operator: also triggers, cancels, retries, pauses and resumes"
    ADMIN = "admin", "Admin: also defines jobs and schedules"


ROLE_ORDER = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    max_active_schedules = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="At most this many enabled, unpaused schedules over the team's jobs (empty: "
        "the DTS_TEAM_MAX_ACTIVE_SCHEDULES default).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        ordering = ["team", "user"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class ApiToken(models.Model):
    """A named token of a user, for the CLI and scripts. Only its SHA-256 is stored: the token
    itself is shown once, when it is created (apps.accounts.services.token_create)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The token's first characters, shown to tell tokens apart; not enough to use it.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    read_only = models.BooleanField(default=False, help_text="Allows only reads (GET, HEAD).")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="api_token_unique_user_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
