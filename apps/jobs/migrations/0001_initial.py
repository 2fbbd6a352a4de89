import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Tag",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        max_length=50,
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[a-z0-9][a-z0-9_.-]*$",
                                "A tag is lower-case letters, digits, '_', '.' and '-', starting with a letter or digit.",
                            )
                        ],
                    ),
                ),
            ],
            options={
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="Job",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("description", models.TextField(blank=True)),
                (
                    "task_type",
                    models.CharField(
                        help_text="A registered task type, e.g. dts.echo.", max_length=200
                    ),
                ),
                (
                    "args",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text="A JSON object, checked against the task type's schema.",
                    ),
                ),
                ("queue", models.CharField(default="default", max_length=100)),
                (
                    "soft_timeout_seconds",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="The task is told to stop after this long (default from settings).",
                        null=True,
                    ),
                ),
                (
                    "hard_timeout_seconds",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="The task's process is killed after this long (default from settings).",
                        null=True,
                    ),
                ),
                (
                    "overlap_policy",
                    models.CharField(
                        choices=[
                            ("allow", "Allow: run alongside"),
                            ("skip", "Skip this fire (recorded)"),
                            ("cancel_previous", "Cancel the previous run, then run"),
                        ],
                        default="allow",
                        max_length=20,
                    ),
                ),
                (
                    "enabled",
                    models.BooleanField(
                        default=True, help_text="A disabled job's schedules do not fire."
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "idempotent",
                    models.BooleanField(
                        default=False,
                        help_text="Safe to run again after its worker was lost mid-run: re-executed at once.",
                    ),
                ),
                (
                    "max_attempts",
                    models.PositiveSmallIntegerField(
                        default=1,
                        help_text="Attempts in all, the first included; 1 means no retry.",
                    ),
                ),
                (
                    "retry_backoff_max_seconds",
                    models.PositiveIntegerField(
                        default=3600, help_text="The longest wait between two attempts."
                    ),
                ),
                (
                    "retry_backoff_seconds",
                    models.PositiveIntegerField(
                        default=10,
                        help_text="The wait before the second attempt; it doubles for each next one.",
                    ),
                ),
                (
                    "retry_jitter",
                    models.BooleanField(
                        default=True,
                        help_text="Wait a random 50-100% of the backoff, so retries spread out.",
                    ),
                ),
                (
                    "max_concurrent_runs",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="At most this many runs of the job execute at once.",
                        null=True,
                    ),
                ),
                (
                    "priority",
                    models.PositiveSmallIntegerField(
                        default=5,
                        help_text="0 (lowest) to 9 (highest): runs waiting in a queue start by priority.",
                    ),
                ),
                (
                    "rate_limit_per_minute",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="At most this many runs of the job start per minute, over all workers.",
                        null=True,
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="jobs",
                        to="accounts.team",
                    ),
                ),
                ("tags", models.ManyToManyField(blank=True, related_name="jobs", to="jobs.tag")),
            ],
            options={
                "ordering": ["name"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("soft_timeout_seconds__isnull", True),
                            ("hard_timeout_seconds__isnull", True),
                            ("soft_timeout_seconds__lt", models.F("hard_timeout_seconds")),
                            _connector="OR",
                        ),
                        name="job_soft_timeout_below_hard_timeout",
                        violation_error_message="The soft timeout must be shorter than the hard timeout.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("soft_timeout_seconds__isnull", True),
                            ("soft_timeout_seconds__gte", 1),
                            _connector="OR",
                        ),
                        name="job_soft_timeout_positive",
                        violation_error_message="The soft timeout must be at least 1 second.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("hard_timeout_seconds__isnull", True),
                            ("hard_timeout_seconds__gte", 1),
                            _connector="OR",
                        ),
                        name="job_hard_timeout_positive",
                        violation_error_message="The hard timeout must be at least 1 second.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("max_attempts__gte", 1), ("max_attempts__lte", 100)),
                        name="job_max_attempts_range",
                        violation_error_message="Max attempts must be between 1 and 100.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("retry_backoff_seconds__gte", 1),
                            ("retry_backoff_max_seconds__gte", models.F("retry_backoff_seconds")),
                            ("retry_backoff_max_seconds__lte", 604800),
                        ),
                        name="job_retry_backoff_range",
                        violation_error_message="The retry backoff must be at least 1 second, and its cap at least the backoff and at most 7 days.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("priority__lte", 9)),
                        name="job_priority_range",
                        violation_error_message="The priority must be between 0 and 9.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("rate_limit_per_minute__isnull", True),
                            ("rate_limit_per_minute__gte", 1),
                            _connector="OR",
                        ),
                        name="job_rate_limit_positive",
                        violation_error_message="The rate limit must be at least 1 run per minute.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("max_concurrent_runs__isnull", True),
                            ("max_concurrent_runs__gte", 1),
                            _connector="OR",
                        ),
                        name="job_max_concurrent_runs_positive",
                        violation_error_message="The cap on concurrent runs must be at least 1.",
                    ),
                    models.UniqueConstraint(
                        fields=("team", "name"),
                        name="job_name_unique_per_team",
                        violation_error_message="Your team has a job of this name already.",
                    ),
                ],
            },
        ),
    ]
