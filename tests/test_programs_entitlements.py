"""Entitlements per cycle: cycle names, amounts checked household by household against an
independent computation (proration and recipients included), idempotence, four eyes,
conditions over three cycles, overlap rules between programs, area scope and audit; on SQLite
and PostgreSQL."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from factories import imported_registry
from sijill.core.areas import Area
from sijill.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sijill.programs.compliance import import_compliance
from sijill.programs.conditions import parse_conditions
from sijill.programs.cycles import parse_cycle
from sijill.programs.enrollment import enroll
from sijill.programs.entitlement_models import ComplianceDecision, Entitlement
from sijill.programs.entitlement_service import approve, approved_entitlements, generate
from sijill.programs.entitlements import plan
from sijill.programs.models import Enrollment, ProgramRun
from sijill.programs.service import run_program
from sijill.programs.spec import SpecError
from sijill.registry.models import Household, Membership, Person
from sijill.security.audit.models import AuditRecord
from sijill.security.principal import Grant, Principal
from sijill.synth.service import generate as synthesise
from sijill.targeting.service import load_snapshot

OFFICER = Principal("officer", (Grant("program_officer", None),))
SECOND = Principal("second-officer", (Grant("program_officer", None),))
CASEWORKER = Principal("caseworker", (Grant("registrar", None),))
DAY = date(2026, 11, 30)
LONG_AGO = date(2025, 1, 1)


# --- cycles and conditions (no database) ------------------------------------------------------


def test_cycle_names_give_their_days_and_refuse_other_kinds():
    november = parse_cycle("monthly", "2026-11")
    assert (november.first, november.last, november.days) == (date(2026, 11, 1), DAY, 30)
    assert parse_cycle("monthly", "2024-02").days == 29
    assert parse_cycle("monthly", "2026-01").previous().name == "2025-12"
    pair = parse_cycle("bimonthly", "2026-11")
    assert (pair.first, pair.last) == (date(2026, 11, 1), date(2026, 12, 31))
    assert pair.previous().name == "2026-09"
    quarter = parse_cycle("quarterly", "2026-Q4")
    assert (quarter.first, quarter.last, quarter.days) == (
        date(2026, 10, 1),
        date(2026, 12, 31),
        92,
    )
    assert parse_cycle("quarterly", "2026-Q1").previous().name == "2025-Q4"
    assert quarter.overlap(date(2026, 11, 1), DAY) == 30
    for kind, name, refused in [
        ("bimonthly", "2026-12", "odd month"),
        ("monthly", "2026-Q4", "named like 2026-11"),
        ("quarterly", "2026-11", "named like 2026-Q4"),
        ("quarterly", "2026-Q5", "named like 2026-Q4"),
        ("monthly", "2026-13", "not a month"),
        ("weekly", "2026-11", "not a kind of cycle"),
    ]:
        with pytest.raises(InvalidInput, match=refused):
            parse_cycle(kind, name)


def test_a_bad_condition_is_refused_with_its_place():
    for condition, refused in [
        ({"name": "school", "reduce_by": 1.5}, r"conditions\[0\]\.reduce_by: a share"),
        ({"name": "school", "suspend_after": 0}, r"conditions\[0\]\.suspend_after"),
        ({"name": "school"}, r"conditions\[0\]: a condition reduces"),
        ({"name": "school", "reduce_by": 0.5, "pay": 1}, r"conditions\[0\]\.pay: not a field"),
    ]:
        with pytest.raises(SpecError, match=refused):
            parse_conditions({"conditions": [condition]})


# --- the registry -----------------------------------------------------------------------------


def spec_document(**changes) -> dict:
    document = {
        "program": "child-grant",
        "version": 1,
        "name": {"ar": "منحة الطفل", "fr": "allocation enfant", "en": "child grant"},
        "owner": "Ministry of Social Affairs",
        "currency": "XSJ",
        "cycle": "monthly",
        "scores": {"mpi_score": {"kind": "mpi"}},
        "parameters": {
            "per_child": {
                "description": "Amount per child per month.",
                "unit": "XSJ",
                "reference": "test",
                "values": {date(2020, 1, 1): 12.5},
            },
        },
        "eligibility": "n_children_0_17 > 0 AND mpi_score >= 0.2",
        "ranking": {"by": "mpi_score", "order": "descending"},
        "quota": {"households": 150},
        "benefit": {
            "rounding": "half_up",
            "components": [
                {"name": "base", "amount": 20},
                {"name": "children", "amount": "per_child", "per": "LEAST(n_children_0_17, 3)"},
            ],
        },
        "recipient": "female_caregiver",
        "recertification_months": 12,
        "exits": [{"name": "no_children", "where": "n_children_0_17 = 0"}],
    }
    document.update(changes)
    return document


def write_spec(folder: Path, name: str = "spec", **changes) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec_document(**changes), allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("entitlements") / "synth"
    synthesise(800, 7, out)
    return out


@pytest.fixture
def registry(database_url, country, tmp_path):
    with imported_registry(database_url, country, tmp_path / "work") as (engine, settings):
        yield engine, settings


def _run_and_enroll(engine, settings, path: Path, on: date, count: int, program="child-grant"):
    """Run a spec and enroll its first `count` notified households on `on`."""
    run_program(engine, settings, principal=OFFICER, spec_path=path, as_of=DAY)
    with Session(engine) as session:
        notified = session.scalars(
            select(Enrollment.household_id)
            .where(Enrollment.program == program, Enrollment.status == "notified")
            .order_by(Enrollment.household_id)
        ).all()
    chosen = list(notified[:count])
    enroll(engine, principal=CASEWORKER, program=program, household_ids=chosen,
           answer="enrolled", on=on)  # fmt: skip
    return chosen


def _entitlements(engine, program="child-grant", cycle="2026-11") -> pl.DataFrame:
    with Session(engine) as session:
        rows = session.execute(
            select(
                Entitlement.household_id, Entitlement.person_id, Entitlement.formula_minor,
                Entitlement.days, Entitlement.amount_minor, Entitlement.status,
                Entitlement.reason,
            ).where(Entitlement.program == program, Entitlement.cycle == cycle)
        ).all()  # fmt: skip
    schema = {"household_id": pl.Int64, "person_id": pl.Int64, "formula_minor": pl.Int64,
              "days": pl.Int64, "amount_minor": pl.Int64, "status": pl.String,
              "reason": pl.String}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row").sort("household_id")


def _formula(engine, settings, program="child-grant") -> pl.DataFrame:
    """The formula computed apart: 20.00 + 12.50 per child (at most 3), in minor units, over
    the feature snapshot of the program's latest run."""
    with Session(engine) as session:
        run = session.scalars(
            select(ProgramRun).where(ProgramRun.program == program).order_by(ProgramRun.id.desc())
        ).first()
        view = load_snapshot(session, settings, OFFICER, run.snapshot_id).view
    return view.select(
        pl.col("household_id").cast(pl.Int64),
        formula=2000 + 1250 * pl.min_horizontal(pl.col("n_children_0_17"), pl.lit(3)),
    )


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def _caregiver(engine, household_ids: list[int], day: date) -> dict[int, int]:
    """The recipient by the female-caregiver rule, computed member by member in Python."""
    with Session(engine) as session:
        rows = session.execute(
            select(Membership.household_id, Person.id, Membership.relationship, Person.sex,
                   Person.birth_date)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.household_id.in_(household_ids), Membership.end_date.is_(None),
                   Person.death_date.is_(None))
        ).all()  # fmt: skip
    by_household: dict[int, list] = {}
    for row in rows:
        by_household.setdefault(row.household_id, []).append(row)
    adult_by = day.replace(year=day.year - 18)
    chosen = {}
    for household, members in by_household.items():

        def oldest(people):
            return min(people, key=lambda p: (p.birth_date or date.max, p.id)).id

        heads = [m for m in members if m.relationship == "head"]
        women = [m for m in members if m.sex == "F"]
        if heads and heads[0].sex == "F":
            chosen[household] = heads[0].id
        elif spouses := [m for m in women if m.relationship == "spouse"]:
            chosen[household] = oldest(spouses)
        elif adults := [m for m in women if m.birth_date and m.birth_date <= adult_by]:
            chosen[household] = oldest(adults)
        elif heads:
            chosen[household] = heads[0].id
    return chosen


def _audits(engine, action: str) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).where(AuditRecord.action == action))


def test_generation_prorates_names_recipients_is_idempotent_and_needs_four_eyes(registry, tmp_path):
    engine, settings = registry
    enrolled = _run_and_enroll(engine, settings, write_spec(tmp_path), LONG_AGO, 60)
    with Session(engine) as session:
        late = session.scalars(
            select(Enrollment.household_id)
            .where(Enrollment.status == "notified")
            .order_by(Enrollment.household_id)
        ).all()[:40]
    enroll(engine, principal=CASEWORKER, program="child-grant", household_ids=list(late),
           answer="enrolled", on=date(2026, 11, 10))  # fmt: skip
    # A stricter version recertifies: some leave. The registry holds no state before today's
    # import, so the exits are dated back to 20 November as a run that day would have.
    stricter = write_spec(
        tmp_path, "v2", version=2, exits=[{"name": "small", "where": "n_children_0_17 < 2"}]
    )
    recert = run_program(
        engine, settings, principal=OFFICER, spec_path=stricter, as_of=DAY, kind="recertification"
    )
    assert recert.transitions["exited"] > 0
    with Session(engine) as session, session.begin():
        session.execute(
            update(Enrollment).where(Enrollment.status == "exited").values(since=date(2026, 11, 20))
        )

    with pytest.raises(InvalidInput, match="not the spec of child-grant's latest run"):
        generate(engine, settings, principal=OFFICER, program="child-grant", cycle="2026-11",
                 spec_path=write_spec(tmp_path))  # fmt: skip
    with pytest.raises(InvalidInput, match="named like 2026-11"):
        generate(engine, settings, principal=OFFICER, program="child-grant", cycle="2026-Q4",
                 spec_path=stricter)  # fmt: skip
    report = generate(engine, settings, principal=OFFICER, program="child-grant",
                      cycle="2026-11", spec_path=stricter)  # fmt: skip
    got = _entitlements(engine)

    # Apart: who was in the program in November, for how many days, for how much.
    with Session(engine) as session:
        states = pl.DataFrame(
            session.execute(select(Enrollment.household_id, Enrollment.status, Enrollment.since)
                            .where(Enrollment.household_id.in_([*enrolled, *late]))).all(),
            schema=["household_id", "status", "since"], orient="row",
        )  # fmt: skip
    start = {h: LONG_AGO for h in enrolled} | {h: date(2026, 11, 10) for h in late}
    expected = (
        states.with_columns(
            start=pl.col("household_id").replace_strict(start, return_dtype=pl.Date),
        )
        .with_columns(
            first=pl.max_horizontal("start", pl.lit(date(2026, 11, 1))),
            last=pl.when(pl.col("status") == "exited").then("since").otherwise(pl.lit(DAY)),
        )
        .with_columns(days=(pl.col("last") - pl.col("first")).dt.total_days() + 1)
        .join(_formula(engine, settings), on="household_id")
        .sort("household_id")
    )
    expected = expected.with_columns(
        amount=pl.struct("formula", "days").map_elements(
            lambda r: _half_up(r["formula"] * r["days"], 30), return_dtype=pl.Int64
        )
    )
    assert got["household_id"].to_list() == expected["household_id"].to_list()
    assert got["days"].to_list() == expected["days"].to_list()
    assert got["formula_minor"].to_list() == expected["formula"].to_list()
    assert got["amount_minor"].to_list() == expected["amount"].to_list()
    assert set(got["days"]) >= {30, 21, 20}  # full, enrolled on the 10th, left on the 20th
    assert got["status"].unique().to_list() == ["due"]
    assert (
        report.households == got.height == 100 and report.total_minor == got["amount_minor"].sum()
    )
    recipients = _caregiver(engine, got["household_id"].to_list(), DAY)
    assert dict(zip(got["household_id"], got["person_id"], strict=True)) == recipients

    # Again: nothing written. Payments see nothing until another officer approves.
    again = generate(engine, settings, principal=OFFICER, program="child-grant",
                     cycle="2026-11", spec_path=stricter)  # fmt: skip
    assert again.unchanged and again.batch_id == report.batch_id
    assert _entitlements(engine).equals(got)
    with Session(engine) as session:
        assert approved_entitlements(session, "child-grant", "2026-11").height == 0
    replaced = generate(engine, settings, principal=OFFICER, program="child-grant",
                        cycle="2026-11", replace=True)  # the stored version, no file  # fmt: skip
    assert replaced.replaced and _entitlements(engine).equals(got)
    with pytest.raises(Forbidden, match="four eyes"):
        approve(engine, principal=OFFICER, program="child-grant", cycle="2026-11")
    with pytest.raises(Forbidden):
        approve(engine, principal=CASEWORKER, program="child-grant", cycle="2026-11")
    approved = approve(engine, principal=SECOND, program="child-grant", cycle="2026-11")
    assert approved.status == "approved"
    with pytest.raises(Conflict, match="approved"):
        generate(engine, settings, principal=OFFICER, program="child-grant", cycle="2026-11",
                 replace=True)  # fmt: skip
    with Session(engine) as session:
        payable = approved_entitlements(session, "child-grant", "2026-11")
    assert payable["amount_minor"].sum() == report.total_minor and payable.height == 100
    assert (_audits(engine, "entitlements.generate"), _audits(engine, "entitlements.approve")) == (
        2,
        1,
    )


def _compliance_file(folder: Path, name: str, rows: list[tuple]) -> Path:
    path = folder / f"{name}.csv"
    lines = ["household_id,condition,compliant", *(",".join(map(str, row)) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_conditions_reduce_suspend_and_reinstate_over_three_cycles(registry, tmp_path):
    engine, settings = registry
    conditions = [
        {"name": "school_attendance", "reduce_by": 0.5, "suspend_after": 2, "reinstate_after": 1}
    ]
    path = write_spec(tmp_path, conditions=conditions)
    a, b, c, d, e = _run_and_enroll(engine, settings, path, LONG_AGO, 5)
    with Session(engine) as session:
        outsider = session.scalar(select(Household.id).where(Household.id.not_in([a, b, c, d, e])))
    pattern = {  # compliant in September, October, November (None: no record)
        a: (True, True, True),
        b: (False, True, True),
        c: (False, False, True),
        d: (False, False, False),
        e: (None, None, None),
    }
    for index, cycle in enumerate(("2026-09", "2026-10", "2026-11")):
        rows = [(h, "school_attendance", str(p[index]).lower())
                for h, p in pattern.items() if p[index] is not None]  # fmt: skip
        if index == 0:
            rows += [("12ab", "school_attendance", "true"), (a, "health", "true"),
                     (a, "school_attendance", "maybe"), (a, "school_attendance", "true"),
                     (999999999999, "school_attendance", "true")]  # fmt: skip
        report = import_compliance(
            engine, principal=CASEWORKER, program="child-grant", cycle=cycle,
            path=_compliance_file(tmp_path, cycle, rows),
        )  # fmt: skip
        if index == 0:
            assert report.accepted == 4
            assert report.rejects.select("row", "reason").rows() == [
                (6, "bad_household_id"), (7, "unknown_condition"), (8, "bad_compliant"),
                (9, "repeated"), (10, "unknown_household"),
            ]  # fmt: skip
            assert not any("12ab" in m or "maybe" in m for m in report.rejects["message"])
        generate(engine, settings, principal=OFFICER, program="child-grant", cycle=cycle,
                 spec_path=path)  # fmt: skip
    formula = dict(_formula(engine, settings).rows())
    expected = {
        # cycle: household -> (status, amount)
        "2026-09": {a: "due", b: "reduced", c: "reduced", d: "reduced", e: "due"},
        "2026-10": {a: "due", b: "due", c: "suspended", d: "suspended", e: "due"},
        "2026-11": {a: "due", b: "due", c: "due", d: "suspended", e: "due"},
    }
    for cycle, statuses in expected.items():
        got = {row[0]: row for row in _entitlements(engine, cycle=cycle).iter_rows()}
        assert set(got) == set(statuses) and outsider not in got
        for household, status in statuses.items():
            share = {"due": 2, "reduced": 1, "suspended": 0}[status]
            assert got[household][5] == status, (cycle, household)
            assert got[household][4] == _half_up(formula[household] * share, 2), (cycle, household)
    with Session(engine) as session:
        outcomes = dict(session.execute(
            select(ComplianceDecision.household_id, ComplianceDecision.outcome).where(
                ComplianceDecision.cycle == "2026-11")).all())  # fmt: skip
    assert outcomes == {a: "full", b: "full", c: "reinstated", d: "suspended", e: "full"}
    assert _entitlements(engine, cycle="2026-11").filter(pl.col("household_id") == d)[
        "reason"
    ].to_list() == ["suspended:school_attendance"]
    approve(engine, principal=SECOND, program="child-grant", cycle="2026-11")
    with pytest.raises(Conflict, match="approved"):
        import_compliance(
            engine, principal=CASEWORKER, program="child-grant", cycle="2026-11",
            path=_compliance_file(tmp_path, "late", [(a, "school_attendance", 0)]),
        )  # fmt: skip


def test_overlap_rules_hold_incompatible_households_and_cut_amounts_to_the_ceiling(
    registry, tmp_path
):
    engine, settings = registry
    # Two other programs on the same households: one incompatible, one quarterly counted
    # against a ceiling of 60.00 a month.
    flat = {"components": [{"name": "base", "amount": 90}]}
    other = write_spec(tmp_path, "other", program="support", cycle="quarterly", benefit=flat,
                       conditions=None, quota={"households": 40})  # fmt: skip
    supported = _run_and_enroll(engine, settings, other, LONG_AGO, 30, program="support")
    generate(engine, settings, principal=OFFICER, program="support", cycle="2026-Q4",
             spec_path=other)  # fmt: skip
    excluded = write_spec(tmp_path, "excluded", program="karama", quota={"households": 20})
    karama = _run_and_enroll(engine, settings, excluded, LONG_AGO, 10, program="karama")
    path = write_spec(tmp_path, incompatible_with=["karama"],
                      ceiling={"amount": 60.00, "with": ["support"]})  # fmt: skip
    enrolled = _run_and_enroll(engine, settings, path, LONG_AGO, 100)

    planned = plan(engine, settings, principal=OFFICER, program="child-grant", cycle="2026-11",
                   spec_path=path)  # fmt: skip
    counted = 90_00 * 30 // 92  # the quarter's November share, rounded down
    formula = dict(_formula(engine, settings).rows())
    held = sorted(set(enrolled) & set(karama))
    capped = sorted(
        h for h in set(enrolled) & set(supported) if formula[h] > 60_00 - counted and h not in held
    )
    assert held and capped
    violations = planned.violations
    assert (
        sorted(violations.filter(pl.col("rule") == "incompatible:karama")["household_id"]) == held
    )
    assert set(capped) <= set(violations.filter(pl.col("rule") == "ceiling")["household_id"])

    report = generate(engine, settings, principal=OFFICER, program="child-grant",
                      cycle="2026-11", spec_path=path)  # fmt: skip
    assert report.summary["overlaps"]["incompatible"] == len(held)
    got = {row[0]: row for row in _entitlements(engine).iter_rows()}
    for household in enrolled:
        status, amount, reason = got[household][5], got[household][4], got[household][6]
        if household in held:
            # Held whatever else applies; the amount it would have is cut to the ceiling too.
            assert status == "held" and reason.startswith("incompatible:karama")
        elif household in capped:
            assert (status, amount, reason) == ("reduced", 60_00 - counted, "ceiling")
        else:
            assert (status, amount) == ("due", formula[household])
    with Session(engine) as session:
        payable = approved_entitlements(session, "child-grant", "2026-11")
    assert payable.height == 0  # generated, not approved


def test_generation_stays_in_the_officers_area(registry, tmp_path):
    engine, settings = registry
    path = write_spec(tmp_path)
    enrolled = _run_and_enroll(engine, settings, path, LONG_AGO, 100)
    with Session(engine) as session:
        area_id, code = session.execute(
            select(Household.area_id, Area.code)
            .join(Area, Area.id == Household.area_id)
            .where(Household.id == enrolled[0])
        ).one()
        inside = set(session.scalars(
            select(Household.id).where(Household.id.in_(enrolled), Household.area_id == area_id)
        ))  # fmt: skip
        level = session.scalar(select(Area.level).where(Area.id == area_id))
        other_code = session.scalar(
            select(Area.code).where(Area.id != area_id, Area.level == level).limit(1)
        )
    local = Principal("local-officer", (Grant("program_officer", area_id),))
    with pytest.raises(Forbidden, match="whole country"):
        generate(engine, settings, principal=local, program="child-grant", cycle="2026-11")
    with pytest.raises(NotFound, match="no area"):
        generate(engine, settings, principal=local, program="child-grant", cycle="2026-11",
                 area_code=other_code)  # fmt: skip
    report = generate(engine, settings, principal=local, program="child-grant",
                      cycle="2026-11", area_code=code)  # fmt: skip
    assert set(_entitlements(engine)["household_id"]) == inside and report.households == len(inside)
    # The national generation would pay those households twice: refused.
    with pytest.raises(Conflict, match="another area"):
        generate(engine, settings, principal=OFFICER, program="child-grant", cycle="2026-11")


def test_a_households_entitlements_are_in_its_specs_minor_units(registry, tmp_path):
    """An amount reads as the spec counts it: in thousandths for a currency of three minor
    units (the Jordanian dinar's), in hundredths by default."""
    from decimal import Decimal

    from sijill.programs.household import household_entitlements

    engine, settings = registry
    for program, minor_units in (("dinar-grant", 3), ("child-grant", None)):
        changes = {"program": program, "quota": None}
        if minor_units is not None:
            changes |= {"currency": "JOD", "minor_units": minor_units}
        spec = write_spec(tmp_path, program, **changes)
        enrolled = _run_and_enroll(engine, settings, spec, LONG_AGO, 1, program=program)
        generate(engine, settings, principal=OFFICER, program=program, cycle="2026-11",
                 spec_path=spec)  # fmt: skip
        with Session(engine) as session:
            stored = session.scalar(
                select(Entitlement.amount_minor).where(
                    Entitlement.program == program, Entitlement.household_id == enrolled[0]
                )
            )
            shown = household_entitlements(session, OFFICER, enrolled[0])
        amount = next(row["amount"] for row in shown if row["program"] == program)
        assert amount == Decimal(stored).scaleb(-(minor_units or 2)) and amount > 0
        assert -amount.as_tuple().exponent == (minor_units or 2)
