"""Reads: a project's batches and files (another project's are not found: 404, never 403, so nothing leaks
that they exist), item counts, pages, and the storage files live in."""

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db.models import Count, Q

from proxy.errors import NotFound

from .models import Batch, BatchFile, BatchItem

COUNTED = ("pending", "running", "succeeded", "errored", "canceled", "expired")


def storage():
    """STORAGES["batches"] when configured (any Django storage backend: S3 and the like); else local files under
    GATEWAY_DATA_DIR/batch-files."""
    if "batches" in settings.STORAGES:
        return storages["batches"]
    return FileSystemStorage(location=settings.DATA_DIR / "batch-files")


def batch_for(project_id: int, batch_id: str, kind: str) -> Batch:
    batch = Batch.objects.filter(id=batch_id, project_id=project_id, kind=kind).select_related(
        "output_file", "error_file", "input_file").first()
    if batch is None:
        raise NotFound(f"batch {batch_id} not found", param="batch_id")
    return batch


def file_for(project_id: int, file_id: str) -> BatchFile:
    file = BatchFile.objects.filter(id=file_id, project_id=project_id).first()
    if file is None:
        raise NotFound(f"No such File object: {file_id}", param="file_id")
    return file


def counts(batch_id: str) -> dict[str, int]:
    rows = BatchItem.objects.filter(batch_id=batch_id).values("status").annotate(n=Count("id"))
    found = {row["status"]: row["n"] for row in rows}
    return {status: found.get(status, 0) for status in COUNTED}


def counts_annotations() -> dict:
    """The same counts as annotations on a Batch queryset (the admin's list: one query for the page)."""
    return {f"n_{status}": Count("items", filter=Q(items__status=status)) for status in COUNTED}


def page(queryset, *, limit: int, after_id: str | None = None, before_id: str | None = None) -> tuple[list, bool]:
    """Newest first, by (created_at, id). `after_id`: the page after that object; `before_id`: the page before."""
    if after_id or before_id:
        anchor = queryset.filter(id=after_id or before_id).values("created_at", "id").first()
        if anchor is None:
            return [], False
        older = Q(created_at__lt=anchor["created_at"]) | Q(created_at=anchor["created_at"], id__lt=anchor["id"])
        if after_id:
            queryset = queryset.filter(older)
        else:
            rows = list(queryset.filter(~older & ~Q(id=anchor["id"])).order_by("created_at", "id")[: limit + 1])
            return list(reversed(rows[:limit])), len(rows) > limit
    rows = list(queryset.order_by("-created_at", "-id")[: limit + 1])
    return rows[:limit], len(rows) > limit


def items_of(batch_id: str):
    return BatchItem.objects.filter(batch_id=batch_id).order_by("seq")
