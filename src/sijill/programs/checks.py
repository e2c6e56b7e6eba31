"""A spec checked whole before anything runs: its fields and clauses (`spec`), its benefit
formula (`benefits`), its conditions (`conditions`) and its ceiling (`overlaps`). Every
command and route that takes a spec file goes through here, so a spec that `sijill programs
check` accepts is one that every later step accepts."""

from dataclasses import dataclass
from pathlib import Path

from sijill.programs.benefits import Formula, parse_formula
from sijill.programs.conditions import Condition, parse_conditions
from sijill.programs.overlaps import Ceiling, parse_ceiling
from sijill.programs.spec import ProgramSpec, load_spec


@dataclass(frozen=True)
class CheckedSpec:
    spec: ProgramSpec
    formula: Formula | None
    conditions: tuple[Condition, ...]
    ceiling: Ceiling | None


def check_spec(path: Path) -> CheckedSpec:
    spec = load_spec(path)
    return CheckedSpec(
        spec=spec,
        formula=parse_formula(spec, path.name),
        conditions=parse_conditions(spec.document, path.name),
        ceiling=parse_ceiling(spec, path.name),
    )
