import hashlib
import secrets
from datetime import timedelta
from functools import cache

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from apps.accounts.models import ApiToken, Membership, Role, Team
from apps.accounts.signals import send_after_commit, token_revoked
from apps.core.exceptions import ValidationFailed
from apps.core.validation import model_validate

TOKEN_PREFIX = "dts_"  # noqa: S105  # not a secret: marks a string as a dts token
MAX_TOKEN_DAYS = 365
# A token's last use is written at most this often, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def team_create(*, name: str, max_active_schedules: int | None = None) -> Team:
    team = Team(name=name, max_active_schedules=max_active_schedules)
    model_validate(team)
    team.save()
    return team


def role_check(role: Role | str) -> None:
    if role not in Role.values:
        raise ValidationFailed(
            f"Unknown role {role!r}; one of {', '.join(Role.values)}.", field="role"
        )


def membership_set(*, team: Team, user: User, role: Role | str) -> Membership:
    """Give `user` the `role` in `team`, replacing the role they had there."""
    role_check(role)
    membership, _ = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def token_create(
    *, user: User, name: str, days: int = 90, read_only: bool = False
) -> tuple[ApiToken, str]:
    """A new token of `user` and its secret, which is not stored and cannot be shown again."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValidationFailed(f"A token lasts 1 to {MAX_TOKEN_DAYS} days.", field="days")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        key_hash=token_hash(secret),
        read_only=read_only,
        expires_at=timezone.now() + timedelta(days=days),
    )
    model_validate(token)
    token.save()
    return token, secret


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke `token`; once that commits, `token_revoked` tells those holding it open."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        send_after_commit(token_revoked, token_id=token.id, user_id=token.user_id)
    return token


def token_authenticate(*, secret: str) -> ApiToken | None:
    """The active token whose secret this is, or None; notes when it was last used."""
    token = _unrevoked_token_get(key_hash=token_hash(secret))
    if token is None:
        return None
    now = timezone.now()
    if token.expires_at <= now or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
    return token


def token_hash(secret: str) -> str:
    # A token is 32 random bytes: a plain SHA-256 cannot be reversed by guessing, so no salt.
    return hashlib.sha256(secret.encode()).hexdigest()


def _unrevoked_token_get(*, key_hash: str) -> ApiToken | None:
    """The unrevoked token with this hash, with its user. Every API request asks, so on
    PostgreSQL the query is written out: building it was a fifth of a request's CPU
    (bench/api.py). Only names from the models are formatted into it; the hash is a parameter."""
    if connection.vendor != "postgresql":
        tokens = ApiToken.objects.select_related("user")
        return tokens.filter(key_hash=key_hash, revoked_at__isnull=True).first()
    with connection.cursor() as cursor:
        cursor.execute(_token_with_user_sql(), [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    token_count = len(_TOKEN_FIELDS)
    token = ApiToken.from_db(connection.alias, _TOKEN_FIELDS, row[:token_count])
    token.user = User.from_db(connection.alias, _USER_FIELDS, row[token_count:])
    return token


@cache
def _token_with_user_sql() -> str:
    quote = connection.ops.quote_name

    def columns(model: type[Model], table: str) -> str:
        return ", ".join(f"{table}.{quote(field.column)}" for field in model._meta.concrete_fields)

    return (
        f"SELECT {columns(ApiToken, 't')}, {columns(User, 'u')} "  # noqa: S608
        f"FROM {quote(ApiToken._meta.db_table)} t "
        f"JOIN {quote(User._meta.db_table)} u ON u.id = t.user_id "
        "WHERE t.key_hash = %s AND t.revoked_at IS NULL"
    )


_TOKEN_FIELDS = [field.attname for field in ApiToken._meta.concrete_fields]
_USER_FIELDS = [field.attname for field in User._meta.concrete_fields]
