from django.db import models


class IndexFailure(models.Model):
    """A document Elasticsearch refused on its own (docs/logs.md, "No loss, no duplicates"): kept
    with the reason, skipped by the indexer. Indexing it again (the rebuild) updates its row."""

    index = models.CharField(max_length=255)
    document_id = models.CharField(max_length=255)
    status = models.PositiveSmallIntegerField()
    reason = models.TextField()
    # The start of the document, for finding out what was wrong with it.
    document = models.TextField()
    failed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["index", "document_id"], name="index_failure_unique")
        ]
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.index}/{self.document_id}: {self.reason[:80]}"
