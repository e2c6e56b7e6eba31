"""The payment cycle through the API: a run as a job, four-eyes approval, release, a
provider's report as a job, totals, a household's payments and the ledger's check."""

from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

import test_payments
from factories import auth_headers
from sijill.api import create_app
from sijill.payments.files import batch_folder
from sijill.payments.providers import provider_named
from test_jobs import wait_for_end
from test_payments import CYCLE, PAY_ON

country = test_payments.country
cycle = test_payments.cycle


def test_a_payment_cycle_through_the_api(cycle, tmp_path):
    engine, settings = cycle["engine"], cycle["settings"]
    sessions = sessionmaker(engine)
    payer = auth_headers(sessions, settings, "payment_officer")
    checker = auth_headers(sessions, settings, "administrator")
    with TestClient(create_app(settings)) as client:
        started = client.post(
            "/payments/runs", json={"cycle": CYCLE, "value_date": PAY_ON.isoformat()},
            headers=payer,
        )  # fmt: skip
        assert started.status_code == 202, started.text
        job = wait_for_end(client, f"/jobs/{started.json()['job_id']}", headers=payer)
        assert job["state"] == "succeeded", job
        outcome = job["outcome"]
        assert outcome["instructed"] == len(cycle["payable"]) - len(cycle["held"])
        batches = client.get("/payments/batches", headers=payer).json()["data"]
        assert batches and {b["status"] for b in batches} == {"prepared"}
        first = test_payments.largest_bank_batch(engine)
        refused = client.post(f"/payments/batches/{first}/approve", headers=payer)
        assert refused.status_code == 403 and "four eyes" in refused.text
        for batch in batches:
            approved = client.post(f"/payments/batches/{batch['id']}/approve", headers=checker)
            assert approved.status_code == 200, approved.text
            released = client.post(f"/payments/batches/{batch['id']}/release", headers=payer)
            assert released.json()["status"] == "released"
        answer = provider_named(settings, "iso20022").answer(
            batch_folder(settings, first), tmp_path / "pain002.xml", fail_one_in=3, seed=2
        )
        sent = client.post(
            "/payments/reports", data={"provider": "iso20022"},
            files={"report": ("pain002.xml", answer.read_bytes(), "application/xml")},
            headers=payer,
        )  # fmt: skip
        assert sent.status_code == 202, sent.text
        job = wait_for_end(client, f"/jobs/{sent.json()['job_id']}", headers=payer)
        assert job["state"] == "succeeded", job
        assert job["outcome"]["paid"] > 0 and job["outcome"]["unmatched"] == 0
        (row,) = client.get("/payments/totals", headers=payer).json()["data"]
        assert row["paid_minor"] > 0 and row["outstanding_minor"] > 0
        paid = next(h for h in reversed(cycle["payable"]) if h not in cycle["held"])
        household = client.get(f"/households/{paid}/payments", headers=payer)
        assert household.status_code == 200, household.text
        assert household.json()["payments"][0]["status"] in ("paid", "failed", "sent")
        check = client.get("/payments/ledger/check", headers=payer).json()
        assert check["ok"] and check["entitlements"] == len(cycle["payable"])
