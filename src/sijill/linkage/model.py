"""The linkage model: what is compared, how pairs are found, how it is trained and saved.

A Fellegi-Sunter model (Splink 5). Each comparison has levels from "the same" to "different";
the model learns, per level, how often true pairs (m) and random pairs (u) land there, and a
pair's match weight is the sum of log2(m/u) over its comparisons. Training is unsupervised:
u from random pairs of the data, m by expectation maximisation on pairs blocked by rules that
leave out the comparison being estimated, the prior from pairs that agree on a national ID or
on everything.

Settings are engine-neutral: Splink's own level library (which writes each backend's SQL) and
plain SQL conditions (comparisons and `abs`), so the Spark backend can run the same model.

Blocking (which pairs are scored at all) keeps a national registry tractable: the same
national ID, or the same skeleton of four of the five name-and-birth keys. A typo or a
variant spelling in any one name part, a changed birth date, or another script still leaves
one rule that holds; siblings (same father, grandfather and family name) are only paired when
born the same year. When every name is written differently, one name part or the locality
with the full date of birth; given and family names swapped, with the birth year. Data that
hold only a given and a family name (an agency's list, a registry without fathers' names) are
paired, and trained, on what they have. Measured on the synthetic country and on FEBRL
against plain Splink (BENCHMARKS.md, "Record linkage").

The trained model is saved as JSON: Splink's settings (every level's SQL, m and u), wrapped
with what Sijill adds: a version (a digest of the settings, so two different models never
share one), when and on how many records it was trained.
"""

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

from sijill.core import clock
from sijill.core.files import UnreadableFile, read_json
from sijill.linkage.features import NAME_PARTS

FORMAT = "sijill-linkage-model/1"
LINK_TYPES = ("dedupe_only", "link_only")

BLOCKING_RULES = (
    ("national_id_index",),
    ("given_sk", "father_sk", "family_sk", "birth_y"),
    ("given_sk", "father_sk", "grandfather_sk", "birth_y"),
    ("given_sk", "grandfather_sk", "family_sk", "birth_y"),
    ("father_sk", "grandfather_sk", "family_sk", "birth_y"),
    ("given_sk", "father_sk", "grandfather_sk", "family_sk"),
    # Every name written differently (typos, another script) and no national ID: one name
    # part or the locality with the full date of birth (a year-only date has no day, so these
    # never pair on the placeholder). The locality, not the district: a district's persons
    # born on one day make pairs by the square of its size (46% of all the pairs scored at
    # 1M persons, none of them a duplicate the other rules miss: BENCHMARKS.md).
    ("given_sk", "birth_y", "birth_m", "birth_d"),
    ("family_sk", "birth_y", "birth_m", "birth_d"),
    ("area_id", "birth_y", "birth_m", "birth_d"),
)


def _equal(*columns: str) -> str:
    return " AND ".join(f"l.{column} = r.{column}" for column in columns)


# Plain SQL, as every engine reads it.
_OTHER_BLOCKING_RULES = (
    # Given and family names in each other's place, born the same year.
    "l.given_sk = r.family_sk AND l.family_sk = r.given_sk AND l.birth_y = r.birth_y",
    # A record without the father's name (a registry or an agency's list that holds only the
    # given and family names) can hold none of the four-of-five rules: what it has is its
    # given and family names with the birth year or the district.
    *(
        f"{_equal('given_sk', 'family_sk', other)} AND (l.father_sk IS NULL OR r.father_sk IS NULL)"
        for other in ("birth_y", "area_parent_id")
    ),
)
# Pairs the prior is estimated from (the share of random pairs that match): agreeing on the
# national ID, or on every name part and the full birth date.
_DETERMINISTIC = (
    ("national_id_index",),
    ("given_sk", "father_sk", "grandfather_sk", "family_sk", "birth_y", "birth_m", "birth_d"),
)
_DETERMINISTIC_RECALL = 0.8
# EM sessions: each estimates m for the comparisons its blocking leaves free. The second is
# "same given name, father's name, family name and birth year", a missing father's name
# counting as the same (data without fathers' names, such as an agency's list, still train).
_TRAINING_BLOCKS = (
    block_on("national_id_index"),
    "l.given_sk = r.given_sk AND l.family_sk = r.family_sk AND l.birth_y = r.birth_y "
    "AND (l.father_sk = r.father_sk OR l.father_sk IS NULL OR r.father_sk IS NULL)",
)


# Given and family name written in each other's place (a form read "surname, first name" one
# way and filled in the other): each of the two comparisons sees the swap.
_SWAPPED = {"given": "family", "family": "given"}


def _name(part: str) -> cl.CustomComparison:
    def column(key: str) -> str:
        return f"{part}_{key}"

    swapped: list[cll.CustomLevel] = []
    if part in _SWAPPED:
        other = _SWAPPED[part]
        crossed = (f"{part}_sk_l = {other}_sk_r", f"{other}_sk_l = {part}_sk_r")
        swapped = [
            cll.CustomLevel(" AND ".join(crossed), "given and family names swapped"),
            cll.CustomLevel(
                " OR ".join(crossed), "one record's given name is the other's family name"
            ),
        ]
    return cl.CustomComparison(
        output_column_name=f"{part}_name",
        comparison_description=f"{part} name, in either script",
        comparison_levels=[
            cll.NullLevel(column("sk")),
            cll.Or(cll.ExactMatchLevel(column("ar")), cll.ExactMatchLevel(column("lat"))).configure(
                label_for_charts="same spelling"
            ),
            cll.Or(cll.ExactMatchLevel(column("sk")), cll.ExactMatchLevel(column("ph"))).configure(
                label_for_charts="same name, other spelling or script"
            ),
            *swapped,
            cll.Or(
                cll.DamerauLevenshteinLevel(column("ar"), 1),
                cll.DamerauLevenshteinLevel(column("lat"), 1),
                cll.JaroWinklerLevel(column("sk"), 0.88),
            ).configure(label_for_charts="close (a typo)"),
            cll.Or(
                cll.JaroWinklerLevel(column("ar"), 0.8), cll.JaroWinklerLevel(column("lat"), 0.8)
            ).configure(label_for_charts="alike (typos)"),
            cll.ElseLevel(),
        ],
    )


def _birth() -> cl.CustomComparison:
    same_year = "birth_y_l = birth_y_r"
    return cl.CustomComparison(
        output_column_name="birth_date",
        comparison_description="date of birth, as far as each record knows it",
        comparison_levels=[
            cll.NullLevel("birth_y"),
            cll.CustomLevel(
                f"{same_year} AND birth_m_l = birth_m_r AND birth_d_l = birth_d_r", "same day"
            ),
            cll.CustomLevel(
                f"{same_year} AND birth_m_l = birth_d_r AND birth_d_l = birth_m_r",
                "day and month swapped",
            ),
            cll.CustomLevel(f"{same_year} AND birth_m_l = birth_m_r", "same month"),
            cll.CustomLevel(
                f"{same_year} AND (birth_m_l IS NULL OR birth_m_r IS NULL)",
                "same year, one knows only the year",
            ),
            cll.CustomLevel("abs(birth_y_l - birth_y_r) <= 1", "a year apart at most"),
            cll.CustomLevel(
                "birth_m_l = birth_m_r AND birth_d_l = birth_d_r", "same day, another year"
            ),
            cll.ElseLevel(),
        ],
    )


def _area() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="area",
        comparison_description="where the household lives",
        comparison_levels=[
            cll.NullLevel("area_id"),
            cll.ExactMatchLevel("area_id").configure(label_for_charts="same locality"),
            cll.ExactMatchLevel("area_parent_id").configure(label_for_charts="same district"),
            cll.ExactMatchLevel("area_grandparent_id").configure(
                label_for_charts="same governorate"
            ),
            cll.ElseLevel(),
        ],
    )


def _particles() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="family_particles",
        comparison_description="ben, ould, ait, abu, al ... before the family name",
        comparison_levels=[
            cll.NullLevel("family_particles"),
            cll.ExactMatchLevel("family_particles"),
            cll.ElseLevel(),
        ],
    )


def settings(link_type: str = "dedupe_only") -> SettingsCreator:
    if link_type not in LINK_TYPES:
        raise ValueError(f"link type {link_type!r} is not one of {', '.join(LINK_TYPES)}")
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        comparisons=[
            *(_name(part) for part in NAME_PARTS),
            _particles(),
            _birth(),
            cl.ExactMatch("sex"),
            cl.ExactMatch("national_id_index"),
            _area(),
            cl.ArrayIntersectAtSizes("others", [2, 1]).configure(term_frequency_adjustments=False),
        ],
        blocking_rules_to_generate_predictions=[
            *(block_on(*rule) for rule in BLOCKING_RULES),
            *_OTHER_BLOCKING_RULES,
        ],
        # Each comparison's weight in a pair's score (`mw_<name>`): what the pair is decided from.
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
    )


def train(linker, *, u_pairs: int, seed: int = 1) -> None:
    """Estimate the model's parameters from the linker's own data (see the module's note); u
    from `u_pairs` random pairs (the setting `linkage_u_pairs`)."""
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on(*rule) for rule in _DETERMINISTIC], recall=_DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=seed)
    for rule in _TRAINING_BLOCKS:
        training.estimate_parameters_using_expectation_maximisation(rule)


def artifact(splink_settings: dict[str, Any], *, records: int, now: datetime | None = None):
    """The saved form of a trained model: Splink's settings and Sijill's own header."""
    canonical = json.dumps(splink_settings, sort_keys=True, separators=(",", ":"))
    return {
        "format": FORMAT,
        "version": "m-" + hashlib.sha256(canonical.encode()).hexdigest()[:16],
        "trained_at": (now or clock.utcnow()).isoformat(timespec="seconds"),
        "trained_on_records": records,
        "splink": splink_settings,
    }


def save(model: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(model, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load(path: Path) -> dict[str, Any]:
    """A saved model, checked: its format, and a version that matches its settings (a model
    edited by hand must say so by getting a new version, i.e. being saved again)."""
    model = read_json(path)
    if not isinstance(model, dict) or model.get("format") != FORMAT:
        raise UnreadableFile(path, f"not a Sijill linkage model (expected format {FORMAT})")
    expected = artifact(model.get("splink") or {}, records=0)["version"]
    if model.get("version") != expected:
        raise UnreadableFile(
            path, "the model's version does not match its settings: it was changed after saving"
        )
    return model
