"""A rule and the values it read, in plain words (Arabic, French, English).

A simple comparison `feature OP value` (also BETWEEN, IN, IS NULL, a yes/no feature) becomes a
sentence with the feature's label and the value in force ("PMT score 12.4 is above the cut-off
11.2"); any other rule is quoted with the values it read. The sentence states how the values
compare, whatever the rule asked, so it reads right for a clause that passed and one that
failed. Numbers are written the language's way (Babel), with as many decimals as it takes to
tell a value from its cut-off.
"""

from decimal import Decimal
from typing import Any

from sqlglot import exp

from sijill.core.i18n import N_, gettext
from sijill.core.i18n.formats import format_list, format_number
from sijill.targeting.features import FEATURES

ABOVE = N_("{label} {value} is above the cut-off {threshold}")
BELOW = N_("{label} {value} is below the cut-off {threshold}")
EQUAL = N_("{label} {value} is equal to the cut-off {threshold}")
IS = N_("{label} is {value}")
IS_NOT = N_("{label} is {value}, not {expected}")
BETWEEN = N_("{label} {value} is between {low} and {high}")
OUTSIDE = N_("{label} {value} is outside the range from {low} to {high}")
ONE_OF = N_("{label} is {value}, one of {values}")
NONE_OF = N_("{label} is {value}, none of {values}")
ANSWER = N_("{label}: {answer}")
UNKNOWN = N_("{label} is not known")
YES, NO, NOT_KNOWN = N_("yes"), N_("no"), N_("not known")
IN_AREAS = N_("the household lives in the program's areas")
OUT_OF_AREAS = N_("the household lives outside the program's areas")
MET = N_("the rule «{rule}» is met (values: {values})")
NOT_MET = N_("the rule «{rule}» is not met (values: {values})")
FEATURE_LABELS = {feature.name: feature.labels._asdict() for feature in FEATURES}


class Words:
    """A clause's sentence in one language."""

    def __init__(
        self,
        parameters: dict[str, Any],
        labels: dict[str, dict[str, str]],
        values: dict[str, Any],
        language: str,
    ):
        self.parameters = parameters  # name -> the value in force
        self.labels = labels  # a score's or a parameter's own labels
        self.values = values  # what the clause read
        self.language = language

    def say(self, message: str, **parts: str) -> str:
        return gettext(message, self.language).format(**parts)

    def label(self, name: str) -> str:
        labels = self.labels.get(name) or FEATURE_LABELS.get(name)
        return labels[self.language] if labels else name

    def operand(self, node: exp.Expression) -> tuple[str, Any] | None:
        """("read", a feature or score) or ("value", a parameter's or a literal's value)."""
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Column):
            if node.name in self.parameters:
                return "value", self.parameters[node.name]
            return "read", node.name
        if isinstance(node, exp.Boolean):
            return "value", bool(node.this)
        if isinstance(node, exp.Literal):
            return "value", node.this if node.is_string else Decimal(node.this)
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and node.this.is_number:
            return "value", -Decimal(node.this.this)
        return None

    def clause(self, tree, clause: dict, passed: bool, read: dict[str, Any]) -> str:
        sentence = None if tree is None else self.simple(tree)
        if sentence is not None:
            return sentence
        shown = [f"{name} = {self.shown(value)}" for name, value in read.items()]
        return self.say(
            MET if passed else NOT_MET,
            rule=clause["where"],
            values=format_list(shown, locale=self.language) if shown else "-",
        )

    def simple(self, tree: exp.Expression) -> str | None:
        """The sentence of a simple rule, or None for any other."""
        while isinstance(tree, exp.Paren | exp.Not):
            tree = tree.this
        if isinstance(tree, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
            left, right = self.operand(tree.this), self.operand(tree.expression)
            if left and right and left[0] == "value":
                left, right = right, left
            if left and right and (left[0], right[0]) == ("read", "value"):
                return self.compare(left[1], right[1])
            return None
        if isinstance(tree, exp.Column) and tree.name not in self.parameters:
            return self.compare(tree.name, True)
        subject = (
            self.operand(tree.this) if isinstance(tree, exp.Between | exp.In | exp.Is) else None
        )
        if not subject or subject[0] != "read":
            return None
        name, label = subject[1], self.label(subject[1])
        value = self.values.get(name)
        if isinstance(tree, exp.Is):
            if value is None:
                return self.say(UNKNOWN, label=label)
            return self.say(IS, label=label, value=self.shown(value))
        if value is None:
            return self.say(UNKNOWN, label=label)
        if isinstance(tree, exp.Between):
            low, high = self.operand(tree.args["low"]), self.operand(tree.args["high"])
            if not (low and high and low[0] == high[0] == "value"):
                return None
            bounds = [decimal(low[1]), decimal(high[1])]
            inside = None not in bounds and bounds[0] <= decimal(value) <= bounds[1]
            low_text, high_text = (self.shown(bound) for bound in (low[1], high[1]))
            return self.say(
                BETWEEN if inside else OUTSIDE, label=label, value=self.shown(value),
                low=low_text, high=high_text,
            )  # fmt: skip
        listed = [self.operand(item) for item in tree.expressions]
        if tree.args.get("query") or not all(item and item[0] == "value" for item in listed):
            return None
        options = [item[1] for item in listed]
        among = any(_same(value, option) for option in options)
        return self.say(
            ONE_OF if among else NONE_OF, label=label, value=self.shown(value),
            values=format_list([self.shown(o) for o in options], locale=self.language),
        )  # fmt: skip

    def compare(self, name: str, expected: Any) -> str:
        label, value = self.label(name), self.values.get(name)
        if value is None:
            return self.say(UNKNOWN, label=label)
        if isinstance(value, bool) or isinstance(expected, bool):
            return self.say(ANSWER, label=label, answer=self.shown(value))
        if isinstance(value, int | float | Decimal) and isinstance(expected, Decimal):
            shown, threshold = _pair(value, expected, self.language)
            difference = decimal(value) - expected
            message = ABOVE if difference > 0 else BELOW if difference < 0 else EQUAL
            return self.say(message, label=label, value=shown, threshold=threshold)
        if _same(value, expected):
            return self.say(IS, label=label, value=self.shown(value))
        return self.say(IS_NOT, label=label, value=self.shown(value),
                        expected=self.shown(expected))  # fmt: skip

    def shown(self, value: Any) -> str:
        if value is None:
            return gettext(NOT_KNOWN, self.language)
        if isinstance(value, bool):
            return gettext(YES if value else NO, self.language)
        if isinstance(value, int | float | Decimal):
            return number(value, self.language)
        return str(value)


def decimal(value: Any) -> Decimal:
    # repr of a float is the shortest text that reads back as it: 0.1, not 0.1000000000000000055
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def _same(value: Any, option: Any) -> bool:
    if isinstance(value, int | float | Decimal) and isinstance(option, int | float | Decimal):
        return decimal(value) == decimal(option)
    return value == option


def number(value: Any, language: str, decimals: int = 2) -> str:
    pattern = "#,##0" + ("." + "#" * decimals if decimals else "")
    return format_number(decimal(value), language, format=pattern)


def _pair(value: Any, threshold: Decimal, language: str) -> tuple[str, str]:
    """A value and its cut-off with enough decimals that different numbers read differently."""
    for decimals in range(2, 10):
        shown, cut = number(value, language, decimals), number(threshold, language, decimals)
        if shown != cut or decimal(value) == threshold:
            break
    return shown, cut
