"""The initial load of an empty PostgreSQL registry: one transaction, indexes built last. It must
leave exactly the schema the migrations made, all or nothing, and register the same rows the
batch path would, including a file that repeats a record key and random IDs that collide."""

import numpy as np
import polars as pl
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sijill.registry.bulk import initial_load
from sijill.registry.bulk import writer as writer_module
from sijill.registry.bulk.service import import_path
from sijill.registry.models import Household, Membership, Person
from test_import import counts, household, make_folder, person


@pytest.fixture
def pg(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the initial load is PostgreSQL's bulk path")
    return engine


def schema(engine) -> tuple[set, set]:
    """Every index and constraint definition in the database (not only the registry's)."""
    with engine.connect() as connection:
        indexes = connection.execute(
            text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            )
        ).all()
        constraints = connection.execute(
            text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), "
                "convalidated FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
            )
        ).all()
    return set(indexes), set(constraints)


def country(tmp_path, households=250):
    rows = [household(f"H{i}") for i in range(households)]
    members = []
    for i in range(households):
        members += [person(f"P{i}a", f"H{i}"), person(f"P{i}b", f"H{i}", "child", "2012")]
    return make_folder(tmp_path / "src", rows, members)


def rosters(engine, source: str) -> dict[str, list[str]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Household.source_key, Person.source_key)
            .join(Membership, Membership.household_id == Household.id)
            .join(Person, Person.id == Membership.person_id)
            .where(Household.source_key.like(f"{source}:%"))
        ).all()
    out: dict[str, list[str]] = {}
    for home, member in rows:
        out.setdefault(home.split(":", 1)[1], []).append(member.split(":", 1)[1])
    return {home: sorted(members) for home, members in out.items()}


def test_initial_load_leaves_the_schema_as_the_migrations_made_it(pg, settings, tmp_path):
    before = schema(pg)
    settings.import_batch_size = 100
    report = import_path(pg, settings, country(tmp_path))
    assert (report.counts.households_added, report.counts.persons_added) == (250, 500)
    assert report.batches_committed == 3
    assert counts(pg) == (250, 500, 500)
    assert schema(pg) == before
    # Now the registry has rows: the same file again goes through the batch path.
    again = import_path(pg, settings, country(tmp_path))
    assert (again.counts.households_present, again.counts.persons_added) == (250, 0)
    assert counts(pg) == (250, 500, 500)


def test_a_failed_initial_load_leaves_the_registry_empty_and_whole(
    pg, settings, tmp_path, monkeypatch
):
    before = schema(pg)
    settings.import_batch_size = 100
    original = writer_module.BatchWriter._copy
    calls = {"membership": 0}

    def failing_copy(self, cursor, table, columns, data):
        original(self, cursor, table, columns, data)
        if table == "membership":
            calls["membership"] += 1
            if calls["membership"] == 2:
                raise RuntimeError("simulated crash after the second batch's rows")

    monkeypatch.setattr(writer_module.BatchWriter, "_copy", failing_copy)
    with pytest.raises(RuntimeError, match="simulated crash"):
        import_path(pg, settings, country(tmp_path))
    assert counts(pg) == (0, 0, 0)
    assert schema(pg) == before
    monkeypatch.setattr(writer_module.BatchWriter, "_copy", original)
    report = import_path(pg, settings, country(tmp_path))
    assert report.counts.households_added == 250 and counts(pg) == (250, 500, 500)


def test_a_key_repeated_in_a_later_batch_is_taken_as_already_registered(pg, settings, tmp_path):
    """As the batch path does: the repeated household is the one registered first (its new
    member joins it), and the repeated person is not added twice."""
    households = [household(f"H{i}") for i in range(7)] + [household("H1")]
    members = []
    for i in range(7):
        members += [person(f"P{i}a", f"H{i}"), person(f"P{i}b", f"H{i}", "child", "2012")]
    # The repeat comes in the second batch (after H6), with a person seen before and a new one
    # (who heads it there, as each batch's households need a head).
    members += [person("P1b", "H1", "child", "2012"), person("P9", "H1", "head")]
    folder = make_folder(tmp_path / "src", households, members)
    settings.import_batch_size = 6  # below what the setting accepts from a user
    report = import_path(pg, settings, folder, source="initial")
    assert report.batches_committed == 2
    assert (report.counts.households_added, report.counts.households_present) == (7, 1)
    assert (report.counts.persons_added, report.counts.persons_present) == (15, 1)
    settings.import_initial_load = False
    same = import_path(pg, settings, folder, source="batches")
    assert (same.counts.households_added, same.counts.households_present) == (7, 1)
    assert (same.counts.persons_added, same.counts.persons_present) == (15, 1)
    assert rosters(pg, "initial") == rosters(pg, "batches")
    assert rosters(pg, "initial")["H1"] == ["P1a", "P1b", "P9"]


def test_random_ids_colliding_across_batches_are_drawn_again(pg, settings, tmp_path, monkeypatch):
    real_new_ids = writer_module.new_ids
    drawn: dict[str, list[int]] = {"household": [], "person": []}

    def colliding(kind, count):
        ids = real_new_ids(kind, count)
        if drawn[kind] and count > 1:  # a batch, not the redraw of one ID
            ids[0] = drawn[kind][0]  # the first ID of the first batch, again
        drawn[kind] += ids.tolist()
        return ids

    monkeypatch.setattr(writer_module, "new_ids", colliding)
    settings.import_batch_size = 100
    report = import_path(pg, settings, country(tmp_path))
    assert (report.counts.households_added, report.counts.persons_added) == (250, 500)
    assert counts(pg) == (250, 500, 500)


class _TinySeen(initial_load.Seen):
    _SLOT_BITS = 4  # 16 slots: nearly every lookup goes on to the exact search


@pytest.mark.parametrize("kind", [initial_load.Seen, _TinySeen])
def test_seen_set_finds_what_was_added_and_nothing_else(kind):
    seen = kind()
    rng = np.random.default_rng(7)
    added = []
    for size in (5, 1, 40, 3, 200, 17, 1000):
        values = rng.integers(-(2**63), 2**63 - 1, size, dtype=np.int64)
        seen.add(values)
        added.append(values)
    everything = np.concatenate(added)
    assert seen.contains(everything).all()
    assert len(seen) == len(everything)
    assert len(seen._runs) <= 4  # merged as it grows
    others = np.concatenate(
        [rng.integers(-(2**63), 2**63 - 1, 5000, dtype=np.int64), everything[:50]]
    )
    rng.shuffle(others)
    assert (seen.contains(others) == np.isin(others, everything)).all()
    assert not kind().contains(others).any()
    keys = kind()
    hashes = initial_load.key_hashes(pl.Series(["a", "b", "c"]))
    keys.add(hashes[:2])
    assert keys.contains(hashes).tolist() == [True, True, False]
