"""What people call each code of the registry's code lists, in Arabic, French and English.

The field catalogue (`registry.fields`) names the fields; this names their values, for the
forms' choices and the pages that show a coded value. Like the catalogue's labels, they are
data beside the codes rather than gettext strings: a code's label is looked up by its list
and its value, and a code added to `registry.codes` without a label fails
tests/test_web_forms.py.
"""

from sijill.registry import codes
from sijill.registry.fields import Labels
from sijill.security.consent import CONSENT_PURPOSES

L = Labels
_OTHER = L("أخرى", "autre", "other")
_CONCRETE = L("خرسانة", "béton", "concrete")
_TIN = L("صفيح", "tôle", "corrugated metal")
_WOOD = L("خشب", "bois", "wood")
_TENT = L("خيمة", "tente", "tent")
_ELECTRICITY = L("كهرباء", "électricité", "electricity")

LABELS: dict[str, dict[str, Labels]] = {
    "dwelling_tenure": {
        "owned": L("ملك", "propriétaire", "owned"),
        "rented": L("إيجار", "locataire", "rented"),
        "free_use": L("سكن مجاني", "logé gratuitement", "free use"),
        "informal_settlement": L("سكن عشوائي", "habitat informel", "informal settlement"),
        "camp": L("مخيم", "camp", "camp"),
    },
    "dwelling_walls": {
        "concrete": _CONCRETE,
        "brick": L("طوب", "brique", "brick"),
        "stone": L("حجر", "pierre", "stone"),
        "mud": L("طين", "terre crue", "mud"),
        "wood": _WOOD,
        "tin": _TIN,
        "tent": _TENT,
    },
    "dwelling_roof": {
        "concrete": _CONCRETE,
        "tin": _TIN,
        "wood": _WOOD,
        "thatch": L("قش", "chaume", "thatch"),
        "tent": _TENT,
    },
    "dwelling_floor": {
        "tiles": L("بلاط", "carrelage", "tiles"),
        "cement": L("إسمنت", "ciment", "cement"),
        "earth": L("تراب", "terre battue", "earth"),
        "other": _OTHER,
    },
    "water_source": {
        "piped_dwelling": L("شبكة داخل المسكن", "robinet dans le logement", "piped into the home"),
        "piped_yard": L("شبكة في الفناء", "robinet dans la cour", "piped to the yard"),
        "public_tap": L("حنفية عامة", "borne-fontaine publique", "public tap"),
        "well": L("بئر", "puits", "well"),
        "tanker": L("صهريج", "camion-citerne", "tanker truck"),
        "surface": L("مياه سطحية", "eau de surface", "surface water"),
    },
    "sanitation": {
        "flush_sewer": L("مرحاض متصل بالمجاري", "chasse d'eau, égout", "flush, to a sewer"),
        "flush_septic": L("مرحاض متصل بخزان", "chasse d'eau, fosse septique", "flush, septic tank"),
        "pit_latrine": L("مرحاض حفرة", "latrine à fosse", "pit latrine"),
        "shared": L("مرحاض مشترك", "toilettes partagées", "shared toilet"),
        "none": L("لا يوجد", "aucun", "none"),
    },
    "cooking_fuel": {
        "gas": L("غاز", "gaz", "gas"),
        "electricity": _ELECTRICITY,
        "kerosene": L("كاز", "pétrole lampant", "kerosene"),
        "wood": L("حطب", "bois", "wood"),
        "charcoal": L("فحم", "charbon de bois", "charcoal"),
        "dung": L("روث", "bouse", "dung"),
    },
    "electricity": {
        "grid": L("الشبكة العامة", "réseau public", "grid"),
        "generator": L("مولد", "groupe électrogène", "generator"),
        "solar": L("طاقة شمسية", "solaire", "solar"),
        "none": L("لا يوجد", "aucune", "none"),
    },
    "registration_source": {
        "survey": L("مسح ميداني", "enquête", "survey"),
        "on_demand": L("بناءً على طلب", "à la demande", "on demand"),
        "agency_import": L("استيراد من جهة", "import d'un organisme", "agency import"),
        "synthetic": L("بيانات اصطناعية", "synthétique", "synthetic"),
    },
    "assets": {
        "tv": L("تلفاز", "téléviseur", "television"),
        "fridge": L("ثلاجة", "réfrigérateur", "fridge"),
        "washing_machine": L("غسالة", "lave-linge", "washing machine"),
        "air_conditioner": L("مكيف هواء", "climatiseur", "air conditioner"),
        "computer": L("حاسوب", "ordinateur", "computer"),
        "mobile_phone": L("هاتف محمول", "téléphone portable", "mobile phone"),
        "car": L("سيارة", "voiture", "car"),
        "motorcycle": L("دراجة نارية", "moto", "motorcycle"),
        "satellite_dish": L("صحن لاقط", "antenne parabolique", "satellite dish"),
        "water_heater": L("سخان ماء", "chauffe-eau", "water heater"),
    },
    "income_sources": {
        "wages_formal": L("أجر من عمل منظم", "salaire formel", "formal wages"),
        "wages_informal": L("أجر من عمل غير منظم", "salaire informel", "informal wages"),
        "agriculture": L("زراعة", "agriculture", "agriculture"),
        "own_business": L("عمل خاص", "activité indépendante", "own business"),
        "pension": L("معاش تقاعدي", "pension", "pension"),
        "remittances": L("تحويلات", "transferts de fonds", "remittances"),
        "social_assistance": L("مساعدة اجتماعية", "aide sociale", "social assistance"),
        "rent": L("إيجار", "loyers perçus", "rent"),
        "none": L("لا دخل", "aucun revenu", "no income"),
    },
    "livestock": {
        "cattle": L("أبقار", "bovins", "cattle"),
        "sheep": L("أغنام", "moutons", "sheep"),
        "goats": L("ماعز", "chèvres", "goats"),
        "camels": L("إبل", "chameaux", "camels"),
        "poultry": L("دواجن", "volailles", "poultry"),
    },
    "relationship": {
        "head": L("رب الأسرة", "chef de ménage", "head of household"),
        "spouse": L("زوج أو زوجة", "conjoint", "spouse"),
        "child": L("ابن أو ابنة", "enfant", "child"),
        "grandchild": L("حفيد أو حفيدة", "petit-enfant", "grandchild"),
        "parent": L("أب أو أم", "parent", "parent"),
        "sibling": L("أخ أو أخت", "frère ou sœur", "sibling"),
        "other_relative": L("قريب آخر", "autre parent", "other relative"),
        "non_relative": L("غير قريب", "sans lien de parenté", "not related"),
    },
    "sex": {"F": L("أنثى", "féminin", "female"), "M": L("ذكر", "masculin", "male")},
    "marital_status": {
        "never_married": L("أعزب", "célibataire", "never married"),
        "married": L("متزوج", "marié", "married"),
        "divorced": L("مطلق", "divorcé", "divorced"),
        "widowed": L("أرمل", "veuf", "widowed"),
        "separated": L("منفصل", "séparé", "separated"),
    },
    "residency_status": {
        "citizen": L("مواطن", "citoyen", "citizen"),
        "refugee": L("لاجئ", "réfugié", "refugee"),
        "asylum_seeker": L("طالب لجوء", "demandeur d'asile", "asylum seeker"),
        "migrant": L("مهاجر", "migrant", "migrant"),
        "stateless": L("عديم الجنسية", "apatride", "stateless"),
    },
    "national_id_type": {
        "national_id": L("بطاقة الهوية الوطنية", "carte nationale d'identité", "national ID"),
        "unhcr": L("رقم حالة المفوضية", "numéro de dossier HCR", "UNHCR case number"),
        "passport": L("جواز سفر", "passeport", "passport"),
        "residence_permit": L("تصريح إقامة", "titre de séjour", "residence permit"),
    },
    "education_level": {
        "none": L("بلا تعليم", "aucune instruction", "no schooling"),
        "primary": L("ابتدائي", "primaire", "primary"),
        "lower_secondary": L("إعدادي", "collège", "lower secondary"),
        "upper_secondary": L("ثانوي", "lycée", "upper secondary"),
        "post_secondary": L("ما بعد الثانوي", "post-secondaire", "post-secondary"),
        "tertiary": L("جامعي", "supérieur", "tertiary"),
    },
    "employment_status": {
        "employed": L("يعمل", "en emploi", "employed"),
        "unemployed": L("عاطل عن العمل", "au chômage", "unemployed"),
        "inactive": L("خارج القوى العاملة", "inactif", "inactive"),
        "student": L("طالب", "étudiant", "student"),
        "retired": L("متقاعد", "retraité", "retired"),
        "unable_to_work": L("غير قادر على العمل", "inapte au travail", "unable to work"),
        "not_applicable": L("لا ينطبق", "sans objet", "not applicable"),
    },
    "employment_sector": {
        "formal": L("منظم", "formel", "formal"),
        "informal": L("غير منظم", "informel", "informal"),
    },
    "orphanhood": {
        "none": L("ليس يتيماً", "non orphelin", "not an orphan"),
        "paternal": L("يتيم الأب", "de père", "father deceased"),
        "maternal": L("يتيم الأم", "de mère", "mother deceased"),
        "double": L("يتيم الأبوين", "de père et de mère", "both parents deceased"),
    },
    "wg": {
        "1": L("لا صعوبة", "aucune difficulté", "no difficulty"),
        "2": L("بعض الصعوبة", "quelques difficultés", "some difficulty"),
        "3": L("صعوبة كبيرة", "beaucoup de difficultés", "a lot of difficulty"),
        "4": L("لا يستطيع أبداً", "ne peut pas du tout", "cannot do at all"),
    },
    "consent_purposes": {
        "eligibility_assessment": L(
            "تقييم الأهلية", "évaluation de l'éligibilité", "eligibility assessment"
        ),
        "payment": L("الدفع", "paiement", "payment"),
        "research": L("البحث", "recherche", "research"),
    },
    "end_reason": {
        "death": L("وفاة", "décès", "death"),
        "moved": L("انتقل", "a déménagé", "moved away"),
        "marriage": L("زواج", "mariage", "marriage"),
        "split": L("انفصال الأسرة", "séparation du ménage", "household split"),
        "registration_error": L("خطأ في التسجيل", "erreur d'enregistrement", "registration error"),
        "relationship_changed": L(
            "تغيرت صلة القرابة", "lien de parenté changé", "relationship changed"
        ),
    },
}

# The lists each name stands for, as `registry.codes` and `security.consent` hold them.
LISTS: dict[str, tuple[str, ...]] = {
    **codes.HOUSEHOLD_CODES,
    **codes.HOUSEHOLD_LISTS,
    "livestock": codes.LIVESTOCK,
    **{name: values for name, values in codes.PERSON_CODES.items()},
    "wg": tuple(str(level) for level in codes.WG_LEVELS),
    "consent_purposes": CONSENT_PURPOSES,
    "end_reason": codes.MEMBERSHIP_END_REASONS,
}


def code_label(code_list: str, code: str, language: str) -> str:
    """The code's label in the language (ar, fr or en); the code itself if it has none, as a
    record loaded in bulk may hold a code the lists no longer have."""
    labels = LABELS.get(code_list, {}).get(code)
    return getattr(labels, language) if labels else code


def choices(code_list: str, language: str) -> list[tuple[str, str]]:
    """(code, label) of every code of the list, in the list's order."""
    return [(code, code_label(code_list, code, language)) for code in LISTS[code_list]]
