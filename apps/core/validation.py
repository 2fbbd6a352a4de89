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
