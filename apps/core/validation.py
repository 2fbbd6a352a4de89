from collections.abc import Mapping, Set
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.exceptions import ValidationFailed


def model_validate(instance: models.Model) -> None:
    """Run the model's own validation; ValidationFailed names the first field at fault."""
    try:
        instance.full_clean()
    except ValidationError as error:
        problems = {
            field: " ".join(str(message) for message in messages)
            for field, messages in error.message_dict.items()
        }
        field, message = next(iter(problems.items()))
        raise ValidationFailed(
            message, field=None if field == "__all__" else field, extra={"errors": problems}
        ) from error


def editable_fields_check(data: Mapping[str, Any], editable: Set[str]) -> None:
    """Refuse an update that names a field outside `editable`, naming it."""
    unknown = sorted(set(data) - editable)
    if unknown:
        raise ValidationFailed(f"{unknown[0]!r} cannot be changed.", field=unknown[0])
