"""How the synthetic households are paid: `instruments.csv`, the file `sijill payments
instruments import` reads (with `--source synth-<seed>`, the source `sijill import` names a
synth folder by).

The synthetic country borrows Turkey's formats, as it does for national IDs (python-stdnum
knows no IBAN format for its own code, SJ): IBANs of Turkish banks with correct check digits,
mobile numbers of Turkish operators valid under libphonenumber's rules, cards with a Luhn
check digit. Most households are paid by bank or wallet, some in cash at a post office, a few
by card, about 2% have no instrument yet, and a few pairs of households share one wallet, as
a payment gate must notice. Each chunk draws from a stream of its own, so the other files of
a seed are unchanged by this one.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_s = pa.string()
SCHEMA = pa.schema(
    [(name, _s) for name in ("household_key", "kind", "holder", "iban", "bic", "phone",
                             "operator", "point", "card_number")]
)  # fmt: skip
# Shares of the households by kind (the rest have none).
KINDS = (("bank", 0.45), ("wallet", 0.40), ("cash", 0.10), ("card", 0.03))
SHARED_WALLETS = 0.005  # of wallet households: given the wallet of the one before them
BANKS = (("00010", "TCZBTR2A"), ("00012", "TRHBTR2A"), ("00015", "TVBATR2A"),
         ("00062", "TGBATRIS"), ("00064", "ISBKTR2A"), ("00067", "YAPITRIS"))  # fmt: skip
# Mobile prefixes (after +90) and their operators.
OPERATORS = (("Turkcell", range(530, 540)), ("Vodafone", range(541, 550)),
             ("Turk Telekom", range(505, 508)))  # fmt: skip
POST_OFFICES = 400
CARD_PREFIX = "9792"  # a domestic card scheme's range
_TR = "292700"  # "TR00" with letters as numbers (T=29, R=27): the IBAN check is over BBAN+this


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return rng.integers(0, 10, size=(n, width), dtype=np.int64)


def _text(digits: np.ndarray) -> np.ndarray:
    """Rows of digits as strings."""
    return np.array(["".join(map(str, row)) for row in digits.tolist()], dtype=object)


def iban_check_digits(bban: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 97-10 check digits of Turkish IBANs, given each BBAN's digits (n, 22)."""
    tail = np.array([int(c) for c in _TR], dtype=np.int64)
    remainder = np.zeros(len(bban), dtype=np.int64)
    for column in np.hstack([bban, np.tile(tail, (len(bban), 1))]).T:
        remainder = (remainder * 10 + column) % 97
    return 98 - remainder


def luhn_check_digits(payload: np.ndarray) -> np.ndarray:
    """The Luhn digit completing each row of digits (n, width)."""
    doubled = payload[:, ::-1].copy()
    doubled[:, 0::2] *= 2  # the digit next to the check digit is doubled
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    return (10 - doubled.sum(axis=1) % 10) % 10


def _holders(persons: pa.Table, keys: pa.Array) -> pa.Array:
    """Each household's head, by name (Latin script, else Arabic)."""
    heads = persons.filter(pc.equal(persons["relationship"], "head"))
    names = {}
    for script in ("lat", "ar"):
        joined = pc.binary_join_element_wise(
            heads[f"given_name_{script}"], heads[f"family_name_{script}"], " "
        )
        names[script] = joined
    name = pc.coalesce(names["lat"], names["ar"])
    by_key = dict(zip(heads["household_key"].to_pylist(), name.to_pylist(), strict=True))
    return pa.array([by_key.get(key) for key in keys.to_pylist()], _s)


def table(rng: np.random.Generator, keys: pa.Array, persons: pa.Table) -> pa.Table:
    """The instruments of one chunk's households (`keys`), their holders from `persons`."""
    n = len(keys)
    draw = rng.random(n)
    kind = np.full(n, "", dtype=object)
    edge = 0.0
    for name, share in KINDS:
        kind[(draw >= edge) & (draw < edge + share)] = name
        edge += share
    columns = {name: np.full(n, None, dtype=object) for name in SCHEMA.names}

    bank = np.flatnonzero(kind == "bank")
    which = rng.integers(0, len(BANKS), len(bank))
    codes = np.array([[int(c) for c in BANKS[i][0]] for i in range(len(BANKS))])[which]
    bban = np.hstack([codes, np.zeros((len(bank), 1), np.int64), _digits(rng, len(bank), 16)])
    check = iban_check_digits(bban)
    columns["iban"][bank] = [f"TR{c:02d}{b}" for c, b in zip(check, _text(bban), strict=True)]
    columns["bic"][bank] = [BANKS[i][1] for i in which]

    wallet = np.flatnonzero(kind == "wallet")
    prefixes = [(operator, p) for operator, block in OPERATORS for p in block]
    which = rng.integers(0, len(prefixes), len(wallet))
    subscriber = _text(_digits(rng, len(wallet), 7))
    phones = np.array(
        [f"+90{prefixes[i][1]}{s}" for i, s in zip(which, subscriber, strict=True)], dtype=object
    )
    operators = np.array([prefixes[i][0] for i in which], dtype=object)
    shared = np.flatnonzero(rng.random(len(wallet)) < SHARED_WALLETS)
    shared = shared[shared > 0]
    phones[shared], operators[shared] = phones[shared - 1], operators[shared - 1]
    columns["phone"][wallet], columns["operator"][wallet] = phones, operators

    cash = np.flatnonzero(kind == "cash")
    offices = rng.integers(1, POST_OFFICES + 1, len(cash))
    columns["point"][cash] = [f"PO-{office:04d}" for office in offices]

    card = np.flatnonzero(kind == "card")
    prefix = np.tile([int(c) for c in CARD_PREFIX], (len(card), 1))
    payload = np.hstack([prefix, _digits(rng, len(card), 11)])
    full = np.hstack([payload, luhn_check_digits(payload)[:, None]])
    columns["card_number"][card] = _text(full)

    columns["household_key"] = keys
    columns["kind"] = kind
    columns["holder"] = _holders(persons, keys)
    out = pa.table({name: pa.array(list(values), _s) if not isinstance(values, pa.Array)
                    else values for name, values in columns.items()}, schema=SCHEMA)  # fmt: skip
    return out.filter(pa.array(kind != ""))
