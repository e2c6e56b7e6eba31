"""The linkage review pages without a browser: the queue of open flags with their kind and
score, a pair side by side with what differs marked, "same person" (a merge) and "not the
same" recorded as the API records them, a merge undone from its page, the API's reviewers
only, and a missing or out-of-scope record answered as the missing page, byte for byte."""

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import OTHER_LOCALITY, auth_headers, household, make_areas, national_id, person
from sijill.api import create_app
from sijill.core.db import transaction
from sijill.core.ids import format_id, new_id
from sijill.linkage.models import LinkageModel, LinkageRun, MatchPair
from sijill.registry.merges.models import PersonMerge
from sijill.registry.models import Membership, Person
from sijill.registry.reviews.models import (
    DUPLICATE_NATIONAL_ID,
    LINKAGE_MATCH,
    OPEN,
    POSSIBLE_DUPLICATE,
    ReviewFlag,
)
from sijill.security.audit.models import AuditRecord
from sijill.web import pages_review
from web_support import csrf_of, sign_in, web_user

MODEL = "m-0123456789abcdef"
LEVELS = {
    "given_name": {"level": "Jaro-Winkler >= 0.9", "weight": 4.25},
    "birth_date": {"level": "exact", "weight": 6.5},
}


def _head(api, area_code: str, **fields) -> tuple[int, int]:
    made = api.post("/households", json=household(area_code=area_code, members=[person(**fields)]))
    assert made.status_code == 201, made.text
    return int(made.json()["household_id"]), int(made.json()["members"][0]["person_id"])


def _scored_flag(sessions, first: tuple[int, int], second: tuple[int, int]) -> int:
    """A pair as `linkage.dedup` proposes it: a possible_duplicate flag and the match_pair
    that holds its score and comparison levels, from a stored model's run."""
    (household_a, a), (household_b, b) = sorted([first, second], key=lambda pair: pair[1])
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        session.add(LinkageModel(version=MODEL, trained_at=now, trained_on_records=2, body={}))
        run = LinkageRun(
            kind="dedup", model_version=MODEL, run_by="system:test", started_at=now,
            records=2, pairs_proposed=1, flags_raised=1, review_threshold=0.9,
        )  # fmt: skip
        flag = ReviewFlag(
            kind=POSSIBLE_DUPLICATE, state=OPEN, person_a_id=a, person_b_id=b,
            household_a_id=household_a, household_b_id=household_b, reason=LINKAGE_MATCH,
            source="linkage", raised_by="system:test", raised_at=now,
        )  # fmt: skip
        session.add_all([run, flag])
        session.flush()
        session.add(
            MatchPair(
                run_id=run.id,
                person_a_id=a,
                person_b_id=b,
                match_weight=14.5,
                match_probability=0.98765,
                levels=LEVELS,
                review_flag_id=flag.id,
            )  # fmt: skip
        )
        return flag.id


@pytest.fixture
def world(settings, sessions):
    make_areas(sessions)
    app = create_app(settings)
    number = national_id()
    document = {"type": "national_id", "number": number}
    with (
        TestClient(app, headers=auth_headers(sessions, settings)) as admin,
        TestClient(app, headers=auth_headers(sessions, settings, "registrar", "SJ01")) as local,
    ):
        # The same number registered in the south, then in the north by a registrar who
        # cannot see the south: the registry flags the pair for a national reviewer.
        held = _head(admin, OTHER_LOCALITY, national_id=document)
        again = _head(
            local, "SJ010101", national_id=document, given_name_lat="Ahmed",
            birth_date="1980-12-05",
        )  # fmt: skip
        # Two households of one man in the north, without a number: the model's proposal.
        first = _head(admin, "SJ010101", national_id=None)
        second = _head(admin, "SJ010102", national_id=None, given_name_lat="Ahmed")
    with sessions() as session:
        shared = session.scalar(
            select(ReviewFlag.id).where(ReviewFlag.kind == DUPLICATE_NATIONAL_ID)
        )
    scored = _scored_flag(sessions, first, second)
    web_user(sessions, "reviewer", "registrar")
    web_user(sessions, "clerk", "registrar", "SJ01")
    web_user(sessions, "officer", "program_officer")
    return {
        "app": app, "sessions": sessions, "shared": shared, "scored": scored,
        "held": held, "again": again, "first": first, "second": second,
    }  # fmt: skip


def _client(world, username: str) -> TestClient:
    client = TestClient(world["app"], follow_redirects=False)
    assert sign_in(client, username).status_code == 303
    return client


def _flag(sessions, flag_id: int) -> ReviewFlag:
    with sessions() as session:
        return session.get(ReviewFlag, flag_id)


def _rows(html: str) -> dict[str, bool]:
    """Each field row of the pair's table, and whether it is marked as differing."""
    return {
        name: bool(differs)
        for differs, name in re.findall(r'<tr( class="differs")? data-field="([a-z_]+)">', html)
    }


def test_queue_lists_the_open_pairs_with_kind_and_score_and_pages(world, monkeypatch):
    with _client(world, "reviewer") as client:
        queue = client.get("/web/review")
        assert queue.status_code == 200, queue.text
        html = queue.text
        assert 'href="/web/review"' in html  # the nav link, for a reviewer
        for flag_id in (world["shared"], world["scored"]):
            assert f'href="/web/review/{flag_id}"' in html
        assert "Same national ID in two records" in html
        assert "Possible duplicate within the registry" in html
        assert "<bdi>98.8%</bdi>" in html  # the model's probability, to a tenth of a percent
        # Listed as the API lists them: oldest first.
        assert html.index(f"/web/review/{world['shared']}") < html.index(
            f"/web/review/{world['scored']}"
        )
        monkeypatch.setattr(pages_review, "PAGE_SIZE", 1)
        first = client.get("/web/review").text
        assert 'href="/web/review?page=2" rel="next"' in first and 'rel="prev"' not in first
        assert f'/web/review/{world["scored"]}"' not in first
        last = client.get("/web/review?page=2").text
        assert 'href="/web/review?page=1" rel="prev"' in last and 'rel="next"' not in last
        assert f'href="/web/review/{world["scored"]}"' in last
    with world["sessions"]() as session:
        listed = session.scalars(
            select(AuditRecord.record_id).where(AuditRecord.action == "review_flag.list")
        ).all()
    assert str(world["shared"]) in listed and str(world["scored"]) in listed


def test_pair_page_marks_the_fields_that_differ_and_only_those(world):
    with _client(world, "reviewer") as client:
        shown = client.get(f"/web/review/{world['shared']}")
        assert shown.status_code == 200, shown.text
        rows = _rows(shown.text)
        for differing in ("given_name_lat", "birth_date", "area_code", "household_id"):
            assert rows[differing], differing
        for equal in ("given_name_ar", "family_name_ar", "family_name_lat", "sex", "national_id"):
            assert rows[equal] is False, equal
        # Not colour alone: each differing row says so in words a screen reader reads.
        marked = re.findall(r'<tr class="differs"[^>]*>\s*<th scope="row">(.*?)</th>', shown.text)
        assert len(marked) == sum(rows.values()) and all(
            '<span class="vh">differs:</span>' in cell for cell in marked
        )
        # Both names in their own script and direction; both records' registry IDs.
        assert '<span lang="ar" dir="rtl">أحمد</span>' in shown.text
        assert '<span lang="en" dir="ltr">Ahmed</span>' in shown.text
        for _household, person_id in (world["held"], world["again"]):
            assert f'value="{person_id}"' in shown.text
        # No model proposed this one; the scored pair shows its evidence, level by level.
        assert "Why the pair was proposed" not in shown.text
        scored = client.get(f"/web/review/{world['scored']}").text
        assert MODEL in scored and "Jaro-Winkler &gt;= 0.9" in scored
        assert "<bdi>14.5</bdi>" in scored and "<bdi>4.25</bdi>" in scored
        assert _rows(scored)["household_id"] and not _rows(scored)["given_name_ar"]


def test_not_the_same_is_recorded_as_the_api_records_it(world):
    flag_id = world["shared"]
    with _client(world, "reviewer") as client:
        token = csrf_of(client.get(f"/web/review/{flag_id}").text)
        refused = client.post(
            f"/web/review/{flag_id}/decision", data={"decision": "different_persons"}
        )
        assert refused.status_code == 403 and _flag(world["sessions"], flag_id).state == OPEN
        decided = client.post(
            f"/web/review/{flag_id}/decision",
            data={"decision": "different_persons", "csrf": token},
        )
        assert decided.status_code == 303, decided.text
        assert decided.headers["location"] == "/web/review?decided=different"
        queue = client.get(decided.headers["location"]).text
        assert "Recorded: not the same person." in queue
        assert f'href="/web/review/{flag_id}"' not in queue
        # Deciding again: the service's conflict, said on the pair's page.
        again = client.post(
            f"/web/review/{flag_id}/decision", data={"decision": "same_person", "csrf": token}
        )
        assert again.status_code == 409
        assert "already decided by another reviewer" in again.text
    flag = _flag(world["sessions"], flag_id)
    assert (flag.state, flag.decision, flag.decided_by) == (
        "decided",
        "different_persons",
        "reviewer",
    )
    with world["sessions"]() as session:
        assert session.scalar(select(PersonMerge.id)) is None
        outcomes = session.scalars(
            select(AuditRecord.outcome).where(
                AuditRecord.action == "review_flag.decide", AuditRecord.record_id == str(flag_id)
            )
        ).all()
    assert sorted(outcomes) == ["conflict", "ok"]


def test_same_person_merges_and_the_household_page_undoes_it(world):
    flag_id = world["scored"]
    (kept_household, kept), (lost_household, lost) = world["first"], world["second"]
    sessions = world["sessions"]
    with _client(world, "reviewer") as client:
        token = csrf_of(client.get(f"/web/review/{flag_id}").text)
        decided = client.post(
            f"/web/review/{flag_id}/decision",
            data={
                "decision": "same_person",
                "csrf": token,
                "keep": str(kept),
                "keep_membership_of": "lost",
            },  # fmt: skip
        )
        assert decided.status_code == 303, decided.text
        with sessions() as session:
            merge = session.scalars(select(PersonMerge)).one()
            assert session.get(Person, lost).merged_into_id == kept
            now_in = session.scalars(
                select(Membership.household_id).where(
                    Membership.person_id == kept, Membership.end_date.is_(None)
                )
            ).all()
        assert decided.headers["location"] == f"/web/review?decided=same&merge={merge.id}"
        assert (merge.kept_person_id, merge.lost_person_id) == (kept, lost)
        assert (merge.review_flag_id, merge.keep_membership_of) == (flag_id, "lost")
        assert now_in == [lost_household]
        flag = _flag(sessions, flag_id)
        assert (flag.decision, flag.decided_by) == ("same_person", "reviewer")
        assert (
            f'href="/web/review/merges/{merge.id}"' in client.get(decided.headers["location"]).text
        )

        # The household the merged record lived in shows the merge, with the way to undo it.
        page = client.get(f"/web/households/{lost_household}").text
        assert f'href="/web/review/merges/{merge.id}"' in page
        shown = client.get(f"/web/review/merges/{merge.id}")
        assert shown.status_code == 200 and "Unmerge" in shown.text
        undone = client.post(f"/web/review/merges/{merge.id}/unmerge", data={"csrf": token})
        assert undone.status_code == 303, undone.text
        after = client.get(undone.headers["location"]).text
        assert "The merge was undone" in after and "Unmerge</button>" not in after
        # Undone already: the service's conflict, on the merge's page.
        twice = client.post(f"/web/review/merges/{merge.id}/unmerge", data={"csrf": token})
        assert twice.status_code == 409 and "can no longer be undone" in twice.text
        assert (
            f"/web/review/merges/{merge.id}"
            not in client.get(f"/web/households/{lost_household}").text
        )
    with sessions() as session:
        assert session.get(PersonMerge, merge.id).state == "unmerged"
        assert session.get(Person, lost).merged_into_id is None
        restored = dict(
            session.execute(
                select(Membership.person_id, Membership.household_id).where(
                    Membership.person_id.in_([kept, lost]), Membership.end_date.is_(None)
                )
            ).all()
        )
    assert restored == {kept: kept_household, lost: lost_household}


def test_only_the_apis_reviewers_see_the_queue(world):
    with _client(world, "officer") as client:
        home = client.get("/web/households").text
        assert 'href="/web/review"' not in home  # no nav link without the permission
        assert client.get("/web/review").status_code == 403
        assert client.get(f"/web/review/{world['shared']}").status_code == 403
        token = csrf_of(home)
        refused = client.post(
            f"/web/review/{world['shared']}/decision",
            data={"decision": "different_persons", "csrf": token},
        )
        assert refused.status_code == 403
    assert _flag(world["sessions"], world["shared"]).state == OPEN
    # A registrar of one region: flags are for the whole country's reviewers (the API's
    # rule), and the refusal says nothing of whether a flag exists.
    with _client(world, "clerk") as client:
        assert client.get("/web/review").status_code == 403
        existing = client.get(f"/web/review/{world['scored']}")
        missing = client.get("/web/review/999999")
        assert existing.status_code == missing.status_code == 403
        # (The language links lead back to the address asked for: the only difference.)
        asked = f"%2Fweb%2Freview%2F{world['scored']}".encode()
        assert existing.content.replace(asked, b"%2Fweb%2Freview%2F999999") == missing.content


def test_missing_or_out_of_scope_is_the_missing_page_byte_for_byte(world):
    again_household = world["again"][0]
    with _client(world, "reviewer") as client:
        token = csrf_of(client.get("/web/review").text)
        missing = client.get("/web/review/999999")
        assert missing.status_code == 404
        for url in ("/web/review/x1", "/web/review/0", f"/web/review/{2**64}"):
            assert client.get(url).content == missing.content, url
        assert client.get("/web/review/merges/999999").content == missing.content
        assert client.get(f"/web/households/{format_id(new_id('household'))}").content == (
            missing.content
        )
        # A merge across the two regions, by the national reviewer.
        merged = client.post(
            f"/web/review/{world['shared']}/decision",
            data={"decision": "same_person", "csrf": token},
        )
        assert merged.status_code == 303, merged.text
    with world["sessions"]() as session:
        merge_id = session.scalar(select(PersonMerge.id))
    with _client(world, "clerk") as client:
        # The north's registrar may merge, but this merge touched the south: to them it is
        # the merge nobody made, and so is undoing it.
        hidden = client.get(f"/web/review/merges/{merge_id}")
        absent = client.get("/web/review/merges/999999")
        assert hidden.status_code == absent.status_code == 404
        assert hidden.content == absent.content
        token = csrf_of(client.get("/web/households").text)
        refused = client.post(f"/web/review/merges/{merge_id}/unmerge", data={"csrf": token})
        assert refused.status_code == 404 and refused.content == absent.content
        assert (
            f"/web/review/merges/{merge_id}"
            not in client.get(f"/web/households/{again_household}").text
        )
    with world["sessions"]() as session:
        assert session.get(PersonMerge, merge_id).state == "merged"
