"""The catalogue of a household's and a person's fields: each one declared once, read everywhere.

Like OpenFisca's variables, each `Field` says what the field is (its `kind`, its code list from
`registry.codes`, its bounds), what people call it (labels in Arabic, French and English),
whether it is personal or stored encrypted, and what the pseudonymised export does with it.
Everything else reads these declarations instead of listing the fields again:

- `registry.models`: the columns of `household`/`person` and their history tables;
- `registry.schemas`: the API's input and output models (fields, types, code lists, bounds);
- `registry.read`, `registry.service`, `registry.roster`: rows to the API's shape and back;
- `registry.bulk`: the exchange format's columns, their checks (`bulk.validate`), the text
  clean-up of agencies' lists (`bulk.mapping`) and the columns written (`bulk.writer`);
- `analytics.export`: what the pseudonymised export keeps, coarsens, pseudonymises or drops;
- `docs/data-format.md`: its field tables are generated from here (`registry.fields_doc`), and a
  test fails when they differ.

Adding a field is one entry here and an Alembic migration for its column (`alembic check` in the
test suite fails without it). A field of a new kind also needs that kind's check, column type
and API type where those are decided by kind (`bulk.validate`, `models`, `schemas`).

Bookkeeping columns that are not fields (`id`, `source_key`, `area_id`, `search_name`,
`version`, `valid_from`, `recorded_by`) are declared in `registry.models` itself.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from sijill.identity.names import NAME_PARTS
from sijill.identity.text import TextKind
from sijill.registry import codes
from sijill.security.consent import CONSENT_PURPOSES, DATA_SHARING_PREFIX

HOUSEHOLD_KEY = "household_key"
PERSON_KEY = "person_key"
# A country (Kind.COUNTRY): an ISO 3166-1 alpha-3 code.
COUNTRY_PATTERN = r"^[A-Z]{3}$"


class Kind(StrEnum):
    """What a field holds; how it is checked, stored and shown follows from the kind."""

    REGISTRY_ID = "registry ID"  # the registry's own ID (Verhoeff check digit); never given
    KEY = "record key"  # the source's own record key (exchange format only)
    AREA = "area"  # an area code; stored as the area's row
    TEXT = "text"  # free text, kept as written
    NAME = "name"  # a name part, kept as written; its normalised form goes to `search_name`
    CODE = "code"  # one of `codes`
    CODES = "codes"  # a set of `codes` (in the exchange format: `;` between items)
    PURPOSES = "consent purposes"  # `codes` and `data_sharing:<agency>`
    COUNTS = "counts"  # a count for each of `codes` (livestock)
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    PARTIAL_DATE = "partial date"  # a day, a month or only a year (`<name>_precision`)
    COUNTRY = "country"  # ISO 3166-1 alpha-3
    DOCUMENT_NUMBER = "document number"  # checked by its document type (`identity.national_id`)
    PHONE = "phone"  # E.164 (`identity.phones`)


class Export(StrEnum):
    """What the pseudonymised export (`analytics.export`) does with a field."""

    KEEP = "kept"
    PSEUDONYMISE = "pseudonymised"  # a keyed HMAC of the value
    YEAR = "coarsened to the year"  # `<name without _date>_year`
    AREAS = "coarsened to area codes"  # governorate, district, locality; small cells removed
    DROP = "dropped"


class Labels(NamedTuple):
    ar: str
    fr: str
    en: str


class Column(NamedTuple):
    """A stored column: `type` is one of text, string, small_integer, big_integer, float,
    boolean, date, json (see `registry.models`); NOT NULL when it has a default."""

    name: str
    type: str
    length: int | None = None
    default: Any = None


_COLUMN_TYPES = {
    Kind.TEXT: "text",
    Kind.NAME: "string",
    Kind.CODE: "string",
    Kind.COUNTRY: "string",
    Kind.PHONE: "string",
    Kind.CODES: "json",
    Kind.PURPOSES: "json",
    Kind.COUNTS: "json",
    Kind.INTEGER: "small_integer",
    Kind.DECIMAL: "float",
    Kind.BOOLEAN: "boolean",
    Kind.DATE: "date",
    Kind.PARTIAL_DATE: "date",
    Kind.DOCUMENT_NUMBER: "string",
}
# An integer field whose bounds pass this is stored as a big integer (money in minor units).
SMALL_INTEGER_MAX = 32_767
# Kinds whose columns are declared in `registry.models` (keys and the area's foreign key).
_STRUCTURAL = {Kind.REGISTRY_ID, Kind.KEY, Kind.AREA}


@dataclass(frozen=True)
class Field:
    """One field. Left to their defaults, the attributes say: optional, not personal, in the
    exchange format and in the API, stored in a column of its own named after it."""

    name: str
    kind: Kind
    labels: Labels
    export: Export
    personal: bool = False  # identifies or locates a person or household by itself
    encrypted: bool = False  # stored encrypted
    identifier: bool = False  # read and written only through `registry.identifiers`
    codes: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None  # the longest value accepted, in clear
    column_length: int | None = None  # stored as String(n); None for unbounded text
    required: bool = False  # every record needs it
    when_empty: str | None = None  # what the clerk is told when a required field is empty
    default: Any = None  # stored when nothing is given (the column is then NOT NULL)
    import_default: str | None = None  # what an empty cell of the exchange format means
    upper: bool = False  # the exchange format reads it in upper case (`f`, `jor`)
    unit: str | None = None
    description: str | None = None  # the API's description
    doc: str = "{codes}"  # docs/data-format.md's values cell ({codes}, {minimum}, {maximum})
    exchange: bool = True  # a column of the exchange format (docs/data-format.md)
    api: bool = True  # a field of the API's households
    api_name: str | None = None  # "group.name" when the API nests it (consent.given)
    membership: bool = False  # stored on the membership, not on the person
    # (field, value): given only when that other field of the record has that value; the API
    # (`registry.schemas`) and the import (`bulk.validate`) both refuse it otherwise.
    only_when: tuple[str, Any] | None = None

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns of the household or person tables (and their history) holding it."""
        if self.kind in _STRUCTURAL or self.membership:
            return ()
        if self.kind is Kind.PARTIAL_DATE:
            return (Column(self.name, "date"), Column(f"{self.name}_precision", "string", 5))
        if self.kind is Kind.DOCUMENT_NUMBER:
            return (
                Column(self.name, "string", self.column_length),
                Column(f"{self.name}_index", "string", 32),
            )
        kind = _COLUMN_TYPES[self.kind]
        if kind == "text" and self.column_length:
            kind = "string"
        if kind == "small_integer" and (self.maximum or 0) > SMALL_INTEGER_MAX:
            kind = "big_integer"
        return (Column(self.name, kind, self.column_length, self.default),)

    @property
    def only_when_message(self) -> str | None:
        """What the clerk is told when the field is given where `only_when` says it is not."""
        if self.only_when is None:
            return None
        other, value = self.only_when
        shown = str(value).lower() if isinstance(value, bool) else value
        return f"{self.name} is given only when {other} is {shown}"

    @property
    def group(self) -> str | None:
        """The object the API nests it in (`consent`, `national_id`), if any."""
        return self.api_name.split(".")[0] if self.api_name and "." in self.api_name else None

    @property
    def member_name(self) -> str:
        """Its name in the API (inside its group, if nested)."""
        return (self.api_name or self.name).split(".")[-1]

    @property
    def as_written(self) -> bool:
        """Free text and names keep their own digits; other text is cleaned (`bulk.mapping`)."""
        return self.kind in (Kind.TEXT, Kind.NAME)

    @property
    def text_kind(self) -> TextKind | None:
        """The rule of characters the field's text must follow (`identity.text`), applied by
        the API (`registry.schemas`) and the import (`bulk.validate`) alike: names take the
        name rule (letters of Arabic or Latin script, spaces, hyphens, apostrophes), other
        free text (address, enumerator) the text rule (adds digits, punctuation, symbols).
        Other kinds are read by stricter rules of their own (codes, numbers, dates, phones,
        document numbers), which no control or format character passes."""
        return {Kind.NAME: TextKind.NAME, Kind.TEXT: TextKind.TEXT}.get(self.kind)

    @property
    def own_digits_rule(self) -> bool:
        """Read by its own rule in `sijill.identity` (digits, marks, separators)."""
        return self.kind in (Kind.PHONE, Kind.DOCUMENT_NUMBER)


class Catalogue:
    """The fields of one entity, in the order of the exchange format and the API."""

    def __init__(self, entity: str, fields: tuple[Field, ...]):
        self.entity = entity
        self.fields = fields
        self._by_name = {field.name: field for field in fields}
        assert len(self._by_name) == len(fields), f"a {entity} field is declared twice"
        # The exchange format's columns, in order.
        self.exchange = tuple(field.name for field in fields if field.exchange)

    def __iter__(self):
        return iter(self.fields)

    def __getitem__(self, name: str) -> Field:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def of_kind(self, *kinds: Kind) -> tuple[Field, ...]:
        return tuple(field for field in self.fields if field.kind in kinds)

    def columns(self, *, exchange: bool = False) -> tuple[Column, ...]:
        """The state columns of the fields (only those the exchange format brings, if asked)."""
        return tuple(
            column
            for field in self.fields
            if field.exchange or not exchange
            for column in field.columns
        )

    def group(self, name: str) -> tuple[Field, ...]:
        return tuple(field for field in self.fields if field.group == name)


_KEEP, _DROP = Export.KEEP, Export.DROP

_LIST_OF_CODES = "list of {codes}"


def _dwelling_codes(*entries: tuple[str, Labels]) -> tuple[Field, ...]:
    """Coded dwelling fields: one of `codes.HOUSEHOLD_CODES`, kept by the export."""
    return tuple(
        Field(name, Kind.CODE, labels, _KEEP, codes=codes.HOUSEHOLD_CODES[name], column_length=24)
        for name, labels in entries
    )


HOUSEHOLD = Catalogue(
    "household",
    (
        Field(
            "household_id",
            Kind.REGISTRY_ID,
            Labels("رقم الأسرة في السجل", "identifiant du ménage au registre", "household ID"),
            Export.PSEUDONYMISE,
            personal=True,
            exchange=False,
            api=False,
        ),
        Field(
            HOUSEHOLD_KEY,
            Kind.KEY,
            Labels("رقم الأسرة في المصدر", "clé du ménage dans la source", "household key"),
            _DROP,
            personal=True,
            required=True,
            doc="the source's own record key (unique in the source; import is idempotent on it)",
            api=False,
        ),
        Field(
            "area_code",
            Kind.AREA,
            Labels("رمز المنطقة", "code de la localité", "area code"),
            Export.AREAS,
            required=True,
            when_empty="area_code is empty: every household needs its area",
            max_length=32,
            description="a locality code",
            doc="a locality code from `areas.csv`",
        ),
        Field(
            "address",
            Kind.TEXT,
            Labels("العنوان", "adresse", "address"),
            _DROP,
            personal=True,
            max_length=500,
            doc="free text",
        ),
        Field(
            "latitude",
            Kind.DECIMAL,
            Labels("خط العرض", "latitude", "latitude"),
            _DROP,
            personal=True,
            minimum=-90,
            maximum=90,
            unit="decimal degrees",
            doc="decimal degrees, optional",
        ),
        Field(
            "longitude",
            Kind.DECIMAL,
            Labels("خط الطول", "longitude", "longitude"),
            _DROP,
            personal=True,
            minimum=-180,
            maximum=180,
            unit="decimal degrees",
            doc="decimal degrees, optional",
        ),
        *_dwelling_codes(
            (
                "dwelling_tenure",
                Labels("حيازة المسكن", "statut d'occupation du logement", "dwelling tenure"),
            ),
            ("dwelling_walls", Labels("مادة الجدران", "matériau des murs", "wall material")),
            ("dwelling_roof", Labels("مادة السقف", "matériau du toit", "roof material")),
            ("dwelling_floor", Labels("مادة الأرضية", "matériau du sol", "floor material")),
        ),
        Field(
            "dwelling_rooms",
            Kind.INTEGER,
            Labels("عدد غرف النوم", "nombre de chambres", "sleeping rooms"),
            _KEEP,
            minimum=0,
            maximum=100,
            description="sleeping rooms",
            doc="integer {minimum} to {maximum} (sleeping rooms)",
        ),
        *_dwelling_codes(
            (
                "water_source",
                Labels("مصدر مياه الشرب", "source d'eau de boisson", "drinking water"),
            ),
            ("sanitation", Labels("الصرف الصحي", "assainissement", "sanitation")),
            ("cooking_fuel", Labels("وقود الطهي", "combustible de cuisson", "cooking fuel")),
            ("electricity", Labels("مصدر الكهرباء", "source d'électricité", "electricity")),
        ),
        Field(
            "assets",
            Kind.CODES,
            Labels("الممتلكات", "biens du ménage", "assets"),
            _KEEP,
            codes=codes.HOUSEHOLD_LISTS["assets"],
            default=list,
            doc=_LIST_OF_CODES,
        ),
        Field(
            "livestock",
            Kind.COUNTS,
            Labels("الثروة الحيوانية", "bétail", "livestock"),
            _KEEP,
            codes=codes.LIVESTOCK,
            minimum=0,
            maximum=1_000_000,
            default=dict,
            description="number of animals of each kind",
            doc="list of `kind:count`, kinds {codes} (e.g. `sheep:12;poultry:30`)",
        ),
        Field(
            "income_sources",
            Kind.CODES,
            Labels("مصادر الدخل", "sources de revenu", "income sources"),
            _KEEP,
            codes=codes.HOUSEHOLD_LISTS["income_sources"],
            default=list,
            doc=_LIST_OF_CODES,
        ),
        Field(
            "registration_source",
            Kind.CODE,
            Labels("مصدر التسجيل", "origine de l'enregistrement", "registration source"),
            _KEEP,
            codes=codes.HOUSEHOLD_CODES["registration_source"],
            column_length=24,
            import_default="agency_import",
        ),
        Field(
            "registration_date",
            Kind.DATE,
            Labels("تاريخ التسجيل", "date d'enregistrement", "registration date"),
            Export.YEAR,
            doc="ISO date `YYYY-MM-DD`",
        ),
        Field(
            "enumerator",
            Kind.TEXT,
            Labels("رمز الباحث الميداني", "code de l'enquêteur", "enumerator"),
            _DROP,
            personal=True,
            max_length=64,
            column_length=64,
            doc="enumerator's code",
        ),
        Field(
            "consent_given",
            Kind.BOOLEAN,
            Labels("تمت الموافقة", "consentement donné", "consent given"),
            _DROP,
            default=False,
            api_name="consent.given",
            doc="`true`/`false`",
        ),
        Field(
            "consent_date",
            Kind.DATE,
            Labels("تاريخ الموافقة", "date du consentement", "consent date"),
            _DROP,
            api_name="consent.date",
            doc="ISO date",
        ),
        Field(
            "consent_purposes",
            Kind.PURPOSES,
            Labels("أغراض الموافقة", "finalités du consentement", "consent purposes"),
            _KEEP,
            codes=CONSENT_PURPOSES,
            default=list,
            api_name="consent.purposes",
            description=f"`eligibility_assessment`, `payment`, `research` or "
            f"`{DATA_SHARING_PREFIX}<agency code>`",
            doc=_LIST_OF_CODES + f", `{DATA_SHARING_PREFIX}<agency code>`",
        ),
    ),
)


_SCRIPTS = {
    "ar": ("بالعربية", "en arabe", "in Arabic"),
    "lat": ("بالأحرف اللاتينية", "en caractères latins", "in Latin script"),
}
_NAME_LABELS = {
    "given": ("الاسم الأول", "prénom", "given name"),
    "father": ("اسم الأب", "nom du père", "father's name"),
    "grandfather": ("اسم الجد", "nom du grand-père", "grandfather's name"),
    "family": ("اسم العائلة", "nom de famille", "family name"),
}


def _name(part: str) -> Field:
    stem, script = part.removesuffix("_name_ar").removesuffix("_name_lat"), part.split("_")[-1]
    labels = Labels(
        *(
            f"{name} ({where})"
            for name, where in zip(_NAME_LABELS[stem], _SCRIPTS[script], strict=True)
        )
    )
    doc = "names in Arabic script" if script == "ar" else "the same names in Latin script"
    return Field(
        part, Kind.NAME, labels, _DROP, personal=True, max_length=100, column_length=100, doc=doc
    )


_WG_LABELS = {
    "wg_seeing": ("صعوبة في الرؤية", "difficulté à voir", "difficulty seeing"),
    "wg_hearing": ("صعوبة في السمع", "difficulté à entendre", "difficulty hearing"),
    "wg_walking": (
        "صعوبة في المشي أو صعود الدرج",
        "difficulté à marcher ou à monter des marches",
        "difficulty walking or climbing steps",
    ),
    "wg_cognition": (
        "صعوبة في التذكر أو التركيز",
        "difficulté à se souvenir ou à se concentrer",
        "difficulty remembering or concentrating",
    ),
    "wg_selfcare": (
        "صعوبة في العناية الذاتية",
        "difficulté à prendre soin de soi",
        "difficulty with self-care",
    ),
    "wg_communication": (
        "صعوبة في التواصل",
        "difficulté à communiquer",
        "difficulty communicating",
    ),
}
_WG_DOC = (
    "Washington Group short set: 1 no difficulty, 2 some difficulty, 3 a lot of difficulty, "
    "4 cannot do at all; empty for children under 5"
)


def _person_code(name: str, labels: Labels, length: int, **extra: Any) -> Field:
    return Field(
        name,
        Kind.CODE,
        labels,
        extra.pop("export", _KEEP),
        codes=codes.PERSON_CODES[name],
        column_length=length,
        **extra,
    )


PERSON = Catalogue(
    "person",
    (
        Field(
            "person_id",
            Kind.REGISTRY_ID,
            Labels("رقم الفرد في السجل", "identifiant de la personne au registre", "person ID"),
            Export.PSEUDONYMISE,
            personal=True,
            exchange=False,
            api=False,
        ),
        Field(
            PERSON_KEY,
            Kind.KEY,
            Labels("رقم الفرد في المصدر", "clé de la personne dans la source", "person key"),
            _DROP,
            personal=True,
            required=True,
            doc="the source's own record key for the person",
            api=False,
        ),
        Field(
            HOUSEHOLD_KEY,
            Kind.KEY,
            Labels("رقم الأسرة في المصدر", "clé du ménage dans la source", "household key"),
            _DROP,
            personal=True,
            required=True,
            when_empty="household_key is empty: whose member?",
            doc="the household the person belongs to",
            api=False,
        ),
        _person_code(
            "relationship",
            Labels("صلة القرابة برب الأسرة", "lien avec le chef de ménage", "relationship"),
            24,
            required=True,
            when_empty="relationship to the head is empty (head, spouse, child, ...)",
            membership=True,
            description="relationship to the head of household",
        ),
        *(_name(part) for part in NAME_PARTS),
        _person_code("sex", Labels("الجنس", "sexe", "sex"), 1, upper=True),
        Field(
            "birth_date",
            Kind.PARTIAL_DATE,
            Labels("تاريخ الميلاد", "date de naissance", "date of birth"),
            Export.YEAR,
            personal=True,
            description="YYYY-MM-DD, or YYYY-MM (day unknown), or YYYY (only the year known)",
            doc="`YYYY-MM-DD`, or `YYYY-MM` (day unknown), or `YYYY` (only the year known)",
        ),
        Field(
            "death_date",
            Kind.DATE,
            Labels("تاريخ الوفاة", "date de décès", "date of death"),
            Export.YEAR,
            personal=True,
            exchange=False,
        ),
        _person_code(
            "marital_status", Labels("الحالة الاجتماعية", "état matrimonial", "marital status"), 16
        ),
        Field(
            "nationality",
            Kind.COUNTRY,
            Labels("الجنسية", "nationalité", "nationality"),
            _KEEP,
            column_length=3,
            upper=True,
            description="ISO 3166-1 alpha-3",
            doc="ISO 3166-1 alpha-3 (`XSJ` for the synthetic country), empty if stateless",
        ),
        _person_code(
            "residency_status",
            Labels("وضع الإقامة", "statut de résidence", "residency status"),
            16,
        ),
        _person_code(
            "national_id_type",
            Labels("نوع وثيقة الهوية", "type de pièce d'identité", "identity document type"),
            24,
            export=_DROP,
            identifier=True,
            api_name="national_id.type",
            description="the kind of identity document",
            doc="{codes} (empty if none)",
        ),
        Field(
            "national_id",
            Kind.DOCUMENT_NUMBER,
            Labels("رقم وثيقة الهوية", "numéro de la pièce d'identité", "identity document number"),
            _DROP,
            personal=True,
            encrypted=True,
            identifier=True,
            max_length=64,
            column_length=160,
            api_name="national_id.number",
            doc="the number; `national_id` numbers must pass the country scheme's check digits",
        ),
        Field(
            "phone",
            Kind.PHONE,
            Labels("رقم الهاتف", "numéro de téléphone", "phone number"),
            _DROP,
            personal=True,
            encrypted=True,
            identifier=True,
            max_length=40,
            column_length=120,
            description="E.164, e.g. +962791234567",
            doc="E.164, e.g. `+962791234567`, optional",
        ),
        *(
            Field(
                domain,
                Kind.INTEGER,
                Labels(*_WG_LABELS[domain]),
                _KEEP,
                minimum=min(codes.WG_LEVELS),
                maximum=max(codes.WG_LEVELS),
                doc=_WG_DOC,
            )
            for domain in codes.WG_DOMAINS
        ),
        _person_code(
            "education_level", Labels("المستوى التعليمي", "niveau d'instruction", "education"), 24
        ),
        Field(
            "enrolled",
            Kind.BOOLEAN,
            Labels("ملتحق بالتعليم حالياً", "scolarisé actuellement", "currently enrolled"),
            _KEEP,
            doc="`true`/`false`: currently attending education",
        ),
        _person_code(
            "employment_status",
            Labels("الوضع الوظيفي", "situation d'emploi", "employment status"),
            24,
            doc="{codes} (children)",
        ),
        _person_code(
            "employment_sector",
            Labels("قطاع العمل", "secteur d'emploi", "employment sector"),
            16,
            doc="{codes}, empty when not employed",
        ),
        # Facts the region's programs rely on (Takaful and Tayssir pay by school level, Karama
        # and social pensions exclude contributory pensioners, orphans' benefits, income tests).
        Field(
            "school_grade",
            Kind.INTEGER,
            Labels("الصف الدراسي", "classe fréquentée", "school grade"),
            _KEEP,
            minimum=1,
            maximum=12,
            only_when=("enrolled", True),
            description="grade attended this school year (1 to 12); only for enrolled members",
            doc="integer {minimum} to {maximum}: the grade attended this school year, only "
            "with `enrolled` true; empty beyond secondary",
        ),
        Field(
            "contributory_pension",
            Kind.BOOLEAN,
            Labels(
                "يتقاضى معاشاً تقاعدياً من التأمينات",
                "perçoit une pension contributive",
                "receives a contributory pension",
            ),
            _KEEP,
            doc="`true`/`false`: receives a contributory (social insurance) pension",
        ),
        _person_code(
            "orphanhood",
            Labels("اليُتم", "orphelin de", "orphanhood"),
            16,
            description="`paternal`, `maternal`, `double`: father, mother or both deceased",
            doc="{codes}: father, mother or both deceased",
        ),
        Field(
            "monthly_income",
            Kind.INTEGER,
            Labels("الدخل الشهري", "revenu mensuel", "monthly income"),
            _KEEP,
            minimum=0,
            maximum=10**12,
            unit="minor units of the currency a month",
            description="own monthly income from work and pensions, in minor units of the "
            "currency (cents); empty when unknown",
            doc="whole number >= {minimum}: own income a month from work and pensions, in minor "
            "units of the currency (`125050` is 1,250.50); empty when unknown",
        ),
    ),
)

CATALOGUES = (HOUSEHOLD, PERSON)
# Every column name the exchange format knows, on either side.
EXCHANGE_FIELDS = frozenset(HOUSEHOLD.exchange) | frozenset(PERSON.exchange)


def exchange_field(name: str) -> Field:
    """The field an exchange-format column holds (`household_key` is the same on both sides)."""
    return HOUSEHOLD[name] if name in HOUSEHOLD else PERSON[name]
