"""The admin's batch pages: progress and counts in the list, item errors on a batch's page, the cancel action."""

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Project
from batches.models import Batch, BatchItem

pytestmark = pytest.mark.django_db


def _batch(project, statuses):
    batch = Batch.objects.create(id=f"msgbatch_admin{len(statuses)}", kind="anthropic", project=project,
                                 ingress_api="anthropic", total=len(statuses), in_progress_at=timezone.now(),
                                 expires_at=timezone.now() + timedelta(hours=24))
    for seq, status in enumerate(statuses):
        errored = status == "errored"
        BatchItem.objects.create(batch=batch, seq=seq, custom_id=f"i{seq}", body={}, status=status,
                                 status_code=400 if errored else None, error_type="invalid_request" if errored else "",
                                 error_message="max_tokens: Field required" if errored else "")
    return batch


def test_list_shows_progress_and_counts_and_the_page_shows_item_errors(admin_client):
    project = Project.objects.create(slug="adm", name="Adm")
    batch = _batch(project, ["succeeded", "succeeded", "errored", "pending"])
    listing = admin_client.get("/admin/batches/batch/").content.decode()
    assert batch.id in listing
    assert '<progress value="75" max="100"' in listing
    assert "4 total · 1 pending · 0 running · <b>2</b> ok" in listing and ">1</b> errored" in listing
    page = admin_client.get(f"/admin/batches/batch/{batch.id}/change/").content.decode()
    assert "max_tokens: Field required" in page
    assert page.index("max_tokens: Field required") < page.index(">i0<"), "errors first"


def test_a_big_batchs_page_shows_its_errors_first_and_a_bounded_number_of_items(admin_client):
    from batches.admin import SHOWN_ITEMS

    project = Project.objects.create(slug="big", name="Big")
    batch = _batch(project, ["succeeded"] * (SHOWN_ITEMS + 50) + ["errored"])
    page = admin_client.get(f"/admin/batches/batch/{batch.id}/change/").content.decode()
    assert "max_tokens: Field required" in page
    assert page.count('class="field-custom_id"') == SHOWN_ITEMS


def test_cancel_action_cancels_pending_items_and_ends_the_batch(admin_client, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    project = Project.objects.create(slug="adm2", name="Adm2")
    batch = _batch(project, ["succeeded", "pending", "pending"])
    response = admin_client.post("/admin/batches/batch/", {"action": "cancel_batches", "_selected_action": [batch.id]})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert (batch.status, batch.outcome) == ("ended", "canceled") and batch.cancel_initiated_at
    assert BatchItem.objects.filter(batch=batch, status="canceled").count() == 2
    assert batch.output_file is not None  # the results file, with the canceled lines


def test_the_lists_own_link_opens_a_page_that_shows_the_items(admin_client):
    """Followed as a person clicks it: the admin quotes the key in its links ("_" -> "_5F"), so the page must find
    the items of the unquoted id (the plain URL of the tests above never showed this)."""
    project = Project.objects.create(slug="lnk", name="Lnk")
    batch = _batch(project, ["succeeded", "errored"])
    listing = admin_client.get("/admin/batches/batch/").content.decode()
    links = set(re.findall(r'href="(/admin/batches/batch/[^"]+/change/[^"]*)"', listing))
    assert len(links) == 1, links
    link = html.unescape(links.pop())
    assert "_5F" in link  # the admin's own quoting of "msgbatch_admin2"
    page = admin_client.get(link)
    assert page.status_code == 200
    text = page.content.decode()
    assert batch.id in text and "max_tokens: Field required" in text
    assert text.count('class="field-custom_id"') == 2  # both items, not an empty table
