"""Name tables: Arabic given and family names with their common Latin spellings.

Each entry is the Arabic form, the Latin spellings met in registries of the region, and a
relative frequency (Mohammed is far more common than Ghassan). The original registration of a
person always uses one canonical spelling per name, chosen from the Arabic form by a hash, so it
does not depend on the order of the table; duplicates of kind `transliteration` use another, and
the Latin-only record of an `other_script` pair (original or copy) any of them.

Migrant domestic workers from outside the Arab world are written in Latin script only, as their
passports are: they have no Arabic form and no father's or grandfather's name.
"""

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

Entry = tuple[str | None, tuple[str, ...], float]

MALE: list[Entry] = [
    ("محمد", ("Mohammed", "Mohamed", "Muhammad", "Mohammad", "Mohamad"), 10.0),
    ("أحمد", ("Ahmed", "Ahmad"), 5.0),
    ("علي", ("Ali", "Aly"), 3.5),
    ("عبد الله", ("Abdullah", "Abdallah", "Abdalla", "Abdulla"), 3.0),
    ("محمود", ("Mahmoud", "Mahmud", "Mahmood"), 2.5),
    ("حسن", ("Hassan", "Hasan"), 2.5),
    ("خالد", ("Khaled", "Khalid"), 2.5),
    ("عمر", ("Omar", "Umar", "Omer"), 2.5),
    ("يوسف", ("Youssef", "Yousef", "Yusuf", "Youssif"), 2.5),
    ("عبد الرحمن", ("Abdelrahman", "Abdul Rahman", "Abdulrahman", "Abd al-Rahman"), 2.0),
    ("حسين", ("Hussein", "Hussain", "Husain", "Hossein"), 2.0),
    ("إبراهيم", ("Ibrahim", "Ebrahim", "Ibraheem"), 2.0),
    ("مصطفى", ("Mustafa", "Moustafa", "Mostafa"), 2.0),
    ("سعيد", ("Said", "Saeed", "Saied"), 1.5),
    ("صالح", ("Saleh", "Salih"), 1.2),
    ("عثمان", ("Othman", "Osman", "Uthman"), 1.0),
    ("كريم", ("Karim", "Kareem"), 1.0),
    ("طارق", ("Tarek", "Tariq", "Tarik"), 1.0),
    ("سليمان", ("Suleiman", "Sulaiman", "Soliman"), 1.0),
    ("إسماعيل", ("Ismail", "Ismael", "Esmail"), 1.0),
    ("ناصر", ("Nasser", "Nasir", "Naser"), 1.0),
    ("جمال", ("Jamal", "Gamal"), 1.0),
    ("وليد", ("Walid", "Waleed"), 1.0),
    ("مازن", ("Mazen", "Mazin"), 0.8),
    ("زياد", ("Ziad", "Ziyad"), 0.8),
    ("فيصل", ("Faisal", "Faysal"), 0.8),
    ("سامي", ("Sami", "Samy"), 0.8),
    ("عادل", ("Adel", "Adil"), 0.8),
    ("ياسر", ("Yasser", "Yasir", "Yaser"), 0.8),
    ("حمزة", ("Hamza", "Hamzah"), 0.8),
    ("عبد العزيز", ("Abdelaziz", "Abdul Aziz", "Abdulaziz"), 0.8),
    ("بلال", ("Bilal", "Belal"), 0.7),
    ("موسى", ("Moussa", "Musa", "Mousa"), 0.7),
    ("ماهر", ("Maher", "Mahir"), 0.6),
    ("هاني", ("Hani", "Hany"), 0.6),
    ("رامي", ("Rami", "Ramy"), 0.6),
    ("أنس", ("Anas",), 0.6),
    ("سلمان", ("Salman",), 0.6),
    ("فارس", ("Fares", "Faris"), 0.6),
    ("منصور", ("Mansour", "Mansur"), 0.6),
    ("عماد", ("Imad", "Emad"), 0.6),
    ("هشام", ("Hisham", "Hesham"), 0.6),
    ("ياسين", ("Yassin", "Yaseen", "Yassine"), 0.6),
    ("عبد الكريم", ("Abdelkarim", "Abdul Karim", "Abdulkarim"), 0.6),
    ("صلاح", ("Salah",), 0.6),
    ("أيمن", ("Ayman", "Aymen"), 0.6),
    ("أسامة", ("Osama", "Usama", "Oussama"), 0.6),
    ("يحيى", ("Yahya", "Yehia"), 0.6),
    ("سالم", ("Salem", "Salim"), 0.6),
    ("سعد", ("Saad",), 0.6),
    ("رياض", ("Riad", "Riyad"), 0.5),
    ("نبيل", ("Nabil", "Nabeel"), 0.5),
    ("شريف", ("Sharif", "Sherif"), 0.5),
    ("عيسى", ("Issa", "Eisa", "Isa"), 0.5),
    ("عمار", ("Ammar",), 0.5),
    ("عبد القادر", ("Abdelkader", "Abdul Qader", "Abdulqadir"), 0.5),
    ("رشيد", ("Rashid", "Rachid", "Rasheed"), 0.5),
    ("سمير", ("Samir", "Sameer"), 0.5),
    ("وائل", ("Wael", "Wail"), 0.5),
    ("قاسم", ("Qasim", "Kassem", "Qassem"), 0.5),
    ("عباس", ("Abbas",), 0.5),
    ("فهد", ("Fahad", "Fahd"), 0.5),
    ("ماجد", ("Majed", "Majid"), 0.5),
    ("جابر", ("Jaber", "Jabir"), 0.4),
    ("عبد الرزاق", ("Abderrazak", "Abdul Razzaq", "Abdulrazak"), 0.4),
    ("عبد الحميد", ("Abdelhamid", "Abdul Hamid"), 0.4),
    ("مراد", ("Mourad", "Murad"), 0.4),
    ("باسم", ("Bassem", "Basim"), 0.4),
    ("حيدر", ("Haidar", "Haider", "Hayder"), 0.4),
    ("زكريا", ("Zakaria", "Zakariya"), 0.4),
    ("إياد", ("Iyad", "Eyad"), 0.4),
    ("معاذ", ("Muath", "Moaz", "Muadh"), 0.4),
    ("هيثم", ("Haitham", "Haytham"), 0.4),
    ("عمرو", ("Amr", "Amro"), 0.4),
    ("كمال", ("Kamal", "Kamel"), 0.4),
    ("أمين", ("Amin", "Amine", "Ameen"), 0.4),
    ("نور الدين", ("Noureddine", "Nour El Din", "Nuraddin"), 0.3),
    ("جعفر", ("Jaafar", "Jafar"), 0.3),
    ("راشد", ("Rashed",), 0.3),
    ("نادر", ("Nader", "Nadir"), 0.3),
    ("مهدي", ("Mahdi", "Mehdi"), 0.3),
    ("غسان", ("Ghassan",), 0.3),
    ("أنور", ("Anwar", "Anouar"), 0.3),
    ("توفيق", ("Tawfiq", "Tawfik", "Toufik"), 0.3),
    ("رضا", ("Rida", "Reda", "Ridha"), 0.3),
    ("شادي", ("Shadi", "Chadi"), 0.3),
    ("جميل", ("Jamil", "Jameel"), 0.3),
    ("لؤي", ("Louay", "Luay"), 0.2),
]

FEMALE: list[Entry] = [
    ("فاطمة", ("Fatima", "Fatma", "Fatimah", "Fatema"), 5.0),
    ("مريم", ("Maryam", "Mariam", "Meryem"), 3.0),
    ("عائشة", ("Aisha", "Aicha", "Aysha", "Ayesha"), 2.5),
    ("زينب", ("Zainab", "Zeinab", "Zaynab"), 2.5),
    ("خديجة", ("Khadija", "Khadijah", "Khadiga"), 2.0),
    ("نور", ("Nour", "Noor", "Nur"), 2.0),
    ("سارة", ("Sara", "Sarah"), 2.0),
    ("هدى", ("Huda", "Hoda", "Houda"), 1.5),
    ("ليلى", ("Layla", "Leila", "Laila"), 1.5),
    ("آمنة", ("Amina", "Amna", "Aminah"), 1.5),
    ("أمل", ("Amal",), 1.2),
    ("سلمى", ("Salma", "Selma"), 1.2),
    ("منى", ("Mona", "Muna"), 1.2),
    ("إيمان", ("Iman", "Eman", "Imane"), 1.2),
    ("رنا", ("Rana",), 1.0),
    ("نادية", ("Nadia", "Nadiya"), 1.0),
    ("سميرة", ("Samira", "Sameera"), 1.0),
    ("ياسمين", ("Yasmin", "Yasmine", "Jasmin"), 1.0),
    ("أسماء", ("Asma", "Asmaa"), 1.0),
    ("آية", ("Aya", "Ayah"), 1.0),
    ("هالة", ("Hala",), 0.8),
    ("رشا", ("Rasha",), 0.8),
    ("حليمة", ("Halima", "Halimah"), 0.8),
    ("سعاد", ("Souad", "Suad", "Soad"), 0.8),
    ("حنان", ("Hanan",), 0.8),
    ("ريم", ("Reem", "Rim"), 0.8),
    ("هبة", ("Heba", "Hiba"), 0.8),
    ("دينا", ("Dina", "Deena"), 0.7),
    ("وفاء", ("Wafaa", "Wafa"), 0.7),
    ("لينا", ("Lina", "Leena"), 0.7),
    ("دعاء", ("Doaa", "Duaa", "Dua"), 0.7),
    ("شيماء", ("Shaimaa", "Shayma", "Chaima"), 0.7),
    ("ملك", ("Malak",), 0.7),
    ("جنى", ("Jana",), 0.7),
    ("زهراء", ("Zahraa", "Zahra"), 0.7),
    ("رقية", ("Ruqayya", "Roqaya", "Rokaya"), 0.6),
    ("جميلة", ("Jamila", "Jameela", "Gamila"), 0.6),
    ("سناء", ("Sanaa", "Sana"), 0.6),
    ("رانيا", ("Rania", "Ranya"), 0.6),
    ("مها", ("Maha",), 0.6),
    ("إسراء", ("Israa", "Esraa", "Isra"), 0.6),
    ("مروة", ("Marwa", "Marwah"), 0.6),
    ("نجلاء", ("Najla", "Naglaa"), 0.5),
    ("صفية", ("Safiya", "Safia"), 0.5),
    ("غادة", ("Ghada",), 0.5),
    ("سهام", ("Siham", "Seham"), 0.5),
    ("نوال", ("Nawal",), 0.5),
    ("هند", ("Hind", "Hend"), 0.5),
    ("بشرى", ("Bushra", "Boushra"), 0.5),
    ("عبير", ("Abeer", "Abir"), 0.5),
    ("نسرين", ("Nisreen", "Nesrine"), 0.5),
    ("نهى", ("Noha", "Nuha"), 0.5),
    ("سمية", ("Sumaya", "Soumaya", "Somaya"), 0.5),
    ("تسنيم", ("Tasneem", "Tasnim"), 0.5),
    ("روان", ("Rawan",), 0.5),
    ("شهد", ("Shahd",), 0.5),
    ("رهف", ("Rahaf",), 0.5),
    ("آلاء", ("Alaa", "Ala"), 0.5),
    ("فرح", ("Farah",), 0.5),
    ("هاجر", ("Hajar", "Hagar"), 0.5),
    ("حنين", ("Haneen", "Hanin"), 0.5),
    ("سحر", ("Sahar",), 0.5),
    ("لجين", ("Lujain", "Loujain"), 0.4),
    ("ابتسام", ("Ibtisam", "Ebtessam"), 0.4),
    ("رحاب", ("Rehab", "Rihab"), 0.4),
    ("لمياء", ("Lamia", "Lamya"), 0.4),
    ("رزان", ("Razan",), 0.4),
    ("بتول", ("Batoul", "Batool"), 0.4),
    ("جود", ("Joud", "Jude"), 0.4),
    ("لانا", ("Lana",), 0.4),
    ("ديما", ("Dima",), 0.4),
    ("نعيمة", ("Naima", "Naeema"), 0.4),
    ("سلوى", ("Salwa",), 0.4),
    ("خلود", ("Kholoud", "Khulud"), 0.4),
    ("أسيل", ("Aseel", "Asil"), 0.4),
    ("نجوى", ("Najwa", "Nagwa"), 0.4),
    ("بسمة", ("Basma", "Bassma"), 0.4),
    ("سوسن", ("Sawsan", "Sausan"), 0.3),
    ("عفاف", ("Afaf",), 0.3),
    ("كوثر", ("Kawthar", "Kaouther", "Kawsar"), 0.3),
    ("ربى", ("Ruba", "Roba"), 0.3),
    ("جيهان", ("Jihan", "Gihan"), 0.3),
    ("وداد", ("Widad", "Wedad"), 0.3),
    ("ميساء", ("Maysaa", "Maysa"), 0.3),
    ("عزيزة", ("Aziza", "Azeeza"), 0.3),
]

# Family names written "Al-X" are also met as "Al X", "El-X" and "Alx"; see _family_spellings.
FAMILY: list[Entry] = [
    ("المصري", ("Al-Masri",), 1.5),
    ("الحسن", ("Al-Hassan", "Al-Hasan"), 1.5),
    ("الخطيب", ("Al-Khatib", "Al-Khateeb"), 1.5),
    ("النجار", ("Al-Najjar", "Al-Naggar"), 1.3),
    ("الحداد", ("Al-Haddad",), 1.3),
    ("العلي", ("Al-Ali",), 1.3),
    ("الأحمد", ("Al-Ahmad", "Al-Ahmed"), 1.3),
    ("الزعبي", ("Al-Zoubi", "Al-Zubi"), 1.2),
    ("العمري", ("Al-Omari", "Al-Umari"), 1.2),
    ("الشامي", ("Al-Shami", "Al-Chami"), 1.0),
    ("البغدادي", ("Al-Baghdadi",), 1.0),
    ("الحلبي", ("Al-Halabi",), 1.0),
    ("التميمي", ("Al-Tamimi", "Al-Tamimy"), 1.2),
    ("القاسم", ("Al-Qasim", "Al-Kassem"), 1.0),
    ("السعدي", ("Al-Saadi", "Al-Saady"), 1.0),
    ("الشمري", ("Al-Shammari", "Al-Shamari"), 1.2),
    ("العنزي", ("Al-Anazi", "Al-Enezi"), 1.2),
    ("الدوري", ("Al-Douri", "Al-Duri"), 0.8),
    ("الجبوري", ("Al-Jubouri", "Al-Jabouri"), 1.0),
    ("الكردي", ("Al-Kurdi", "Al-Kordi"), 0.8),
    ("العبدالله", ("Al-Abdullah", "Al-Abdallah"), 1.0),
    ("الرفاعي", ("Al-Rifai", "Al-Refaie"), 0.8),
    ("الحسيني", ("Al-Husseini", "Al-Hussaini"), 0.8),
    ("الصباغ", ("Al-Sabbagh",), 0.6),
    ("العطار", ("Al-Attar",), 0.6),
    ("الخياط", ("Al-Khayyat", "Al-Khayat"), 0.6),
    ("السيد", ("Al-Sayed", "Al-Sayyid"), 1.0),
    ("البدوي", ("Al-Badawi", "Al-Badawy"), 0.8),
    ("الجزائري", ("Al-Jazairi",), 0.4),
    ("المغربي", ("Al-Maghribi", "Al-Maghrebi"), 0.5),
    ("التونسي", ("Al-Tounsi", "Al-Tunisi"), 0.4),
    ("اليمني", ("Al-Yamani", "Al-Yemeni"), 0.5),
    ("الحوراني", ("Al-Hourani", "Al-Horani"), 0.7),
    ("النابلسي", ("Al-Nabulsi", "Al-Nabulsy"), 0.6),
    ("القدسي", ("Al-Qudsi", "Al-Kudsi"), 0.5),
    ("الحمصي", ("Al-Homsi", "Al-Himsi"), 0.6),
    ("الدمشقي", ("Al-Dimashqi",), 0.4),
    ("الموصلي", ("Al-Mosuli", "Al-Mawsili"), 0.5),
    ("البصري", ("Al-Basri",), 0.5),
    ("العراقي", ("Al-Iraqi",), 0.4),
    ("الفلاحي", ("Al-Fallahi",), 0.5),
    ("الربيعي", ("Al-Rubaie", "Al-Rubai"), 0.6),
    ("الساعدي", ("Al-Saedi",), 0.5),
    ("الكبيسي", ("Al-Kubaisi",), 0.5),
    ("الدليمي", ("Al-Dulaimi", "Al-Dulaymi"), 0.7),
    ("العبيدي", ("Al-Obaidi", "Al-Ubaidi"), 0.7),
    ("الزبيدي", ("Al-Zubaidi", "Al-Zobaidi"), 0.7),
    ("الهاشمي", ("Al-Hashimi", "Al-Hashemi"), 0.8),
    ("القرشي", ("Al-Qurashi", "Al-Korashi"), 0.5),
    ("الأنصاري", ("Al-Ansari",), 0.6),
    ("الحربي", ("Al-Harbi",), 0.8),
    ("المطيري", ("Al-Mutairi",), 0.8),
    ("العتيبي", ("Al-Otaibi", "Al-Utaybi"), 0.8),
    ("القحطاني", ("Al-Qahtani", "Al-Kahtani"), 0.8),
    ("الغامدي", ("Al-Ghamdi",), 0.6),
    ("الزهراني", ("Al-Zahrani",), 0.6),
    ("الشهري", ("Al-Shehri",), 0.5),
    ("الدوسري", ("Al-Dosari", "Al-Dossary"), 0.6),
    ("البلوشي", ("Al-Balushi", "Al-Baloushi"), 0.4),
    ("الكعبي", ("Al-Kaabi",), 0.5),
    ("المنصوري", ("Al-Mansouri", "Al-Mansoori"), 0.5),
    ("النعيمي", ("Al-Nuaimi", "Al-Naimi"), 0.5),
    ("الظاهري", ("Al-Dhaheri", "Al-Zahiri"), 0.4),
    ("السويدي", ("Al-Suwaidi", "Al-Sowaidi"), 0.4),
    ("الحمادي", ("Al-Hammadi",), 0.4),
    ("العامري", ("Al-Amiri", "Al-Ameri"), 0.5),
    ("الفارس", ("Al-Fares",), 0.4),
    ("الجمل", ("Al-Gamal", "Al-Jamal"), 0.5),
    ("الشريف", ("Al-Sharif", "Al-Cherif"), 0.6),
    ("الطراونة", ("Al-Tarawneh", "Al-Tarawna"), 0.6),
    ("المجالي", ("Al-Majali",), 0.5),
    ("الفايز", ("Al-Fayez",), 0.5),
    ("الرواشدة", ("Al-Rawashdeh",), 0.5),
    ("العدوان", ("Al-Adwan",), 0.5),
    ("الخصاونة", ("Al-Khasawneh",), 0.5),
    ("عبد الهادي", ("Abdel Hadi", "Abdul Hadi", "Abdelhadi"), 0.6),
    ("أبو زيد", ("Abu Zeid", "Abou Zeid", "Abuzaid"), 0.7),
    ("أبو علي", ("Abu Ali", "Abou Ali"), 0.6),
    ("أبو حمدان", ("Abu Hamdan", "Abou Hamdan"), 0.5),
    ("أبو شقرة", ("Abu Shaqra", "Abou Chakra"), 0.4),
    ("أبو غزالة", ("Abu Ghazaleh", "Abu Ghazala"), 0.4),
    ("بن علي", ("Ben Ali", "Bin Ali"), 0.5),
    ("بن سالم", ("Ben Salem", "Bin Salem"), 0.5),
    ("خوري", ("Khoury", "Khouri"), 0.5),
    ("حمدان", ("Hamdan",), 0.7),
    ("سلامة", ("Salameh", "Salama"), 0.7),
    ("عودة", ("Odeh", "Awda", "Ouda"), 0.6),
    ("نصار", ("Nassar",), 0.6),
    ("منصور", ("Mansour", "Mansur"), 0.7),
    ("درويش", ("Darwish", "Darwich"), 0.6),
    ("شاهين", ("Shaheen", "Chahine", "Shahin"), 0.6),
    ("يوسف", ("Youssef", "Yousef"), 0.6),
    ("عيسى", ("Issa", "Eissa"), 0.5),
    ("خليل", ("Khalil", "Khaleel"), 0.7),
    ("حجازي", ("Hijazi", "Hegazy", "Hejazi"), 0.6),
    ("قطب", ("Qutb", "Kotb"), 0.4),
    ("حمود", ("Hammoud", "Hamoud"), 0.6),
    ("زيدان", ("Zidan", "Zeidan"), 0.5),
    ("سرحان", ("Sarhan",), 0.5),
    ("طه", ("Taha",), 0.5),
    ("بركات", ("Barakat",), 0.6),
    ("جرادات", ("Jaradat",), 0.5),
    ("عبيدات", ("Obeidat", "Ubaidat"), 0.5),
    ("بني هاني", ("Bani Hani",), 0.4),
]

# Domestic workers' names by nationality (Latin only, given and family).
FOREIGN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PHL": (
        ("Maria", "Rosario", "Jocelyn", "Marites", "Lorna", "Grace", "Joy", "Analyn"),
        ("Santos", "Reyes", "Cruz", "Bautista", "Garcia", "Mendoza", "Dela Cruz"),
    ),
    "ETH": (
        ("Tigist", "Meseret", "Hiwot", "Almaz", "Selam", "Mekdes", "Bethlehem"),
        ("Tesfaye", "Bekele", "Alemu", "Girma", "Haile", "Tadesse"),
    ),
    "LKA": (
        ("Dilrukshi", "Chamari", "Nirosha", "Kumari", "Sanduni", "Nadeeka"),
        ("Perera", "Fernando", "Silva", "Jayasinghe", "Wijesinghe"),
    ),
    "BGD": (
        ("Rahima", "Shirin", "Nasrin", "Rokeya", "Shapla", "Moriom"),
        ("Begum", "Akter", "Khatun", "Sultana", "Parvin"),
    ),
}


def _family_spellings(latin: tuple[str, ...]) -> tuple[str, ...]:
    # The table's own spellings first (they are the ones a canonical spelling is chosen from).
    spellings = list(latin)
    for base in latin:
        if base.startswith("Al-"):
            rest = base[3:]
            variants = (f"Al {rest}", f"El-{rest}", f"Al{rest.lower()}")
            spellings += [v for v in variants if v not in spellings]
    return tuple(spellings)


@dataclass(frozen=True)
class NameTable:
    """Names as integer ids; Arabic and Latin forms are looked up only when writing."""

    arabic: pa.Array  # one per id, null for Latin-only names
    latin: pa.Array  # every spelling of every name, name after name
    first_spelling: np.ndarray  # index in `latin` of each id's first spelling
    n_spellings: np.ndarray
    canonical: np.ndarray  # which spelling the original registration uses
    weights: np.ndarray

    def latin_index(self, ids: np.ndarray, spelling: np.ndarray | None = None) -> np.ndarray:
        """Index in `latin` of each name id written with `spelling` (canonical where < 0)."""
        safe = np.maximum(ids, 0)
        chosen = self.canonical[safe]
        if spelling is not None:
            chosen = np.where(spelling >= 0, spelling, chosen)
        return self.first_spelling[safe] + chosen

    def sample(self, rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
        """`n` ids drawn from [lo, hi) with the table's frequencies."""
        p = self.weights[lo:hi] / self.weights[lo:hi].sum()
        cumulative = np.cumsum(p)
        cumulative[-1] = 1.0
        return (lo + np.searchsorted(cumulative, rng.random(n), side="right")).astype(np.int32)


def _build(entries: list[Entry], usual: list[int]) -> NameTable:
    """`usual[i]`: how many of entry i's first spellings are usual enough to be canonical."""
    spellings = [latin for _, latin, _ in entries]
    counts = np.array([len(s) for s in spellings], dtype=np.int32)
    canonical = np.array(
        [
            zlib.crc32((ar or lat[0]).encode()) % k
            for (ar, lat, _), k in zip(entries, usual, strict=True)
        ],
        dtype=np.int32,
    )
    return NameTable(
        arabic=pa.array([ar for ar, _, _ in entries], pa.string()),
        latin=pa.array([s for group in spellings for s in group], pa.string()),
        first_spelling=(np.cumsum(counts) - counts).astype(np.int32),
        n_spellings=counts,
        canonical=canonical,
        weights=np.array([w for _, _, w in entries], dtype=np.float64),
    )


def _foreign_entries(part: int) -> tuple[list[Entry], dict[str, tuple[int, int]]]:
    entries: list[Entry] = []
    ranges: dict[str, tuple[int, int]] = {}
    for country, names in FOREIGN.items():
        start = len(entries)
        entries += [(None, (name,), 1.0) for name in names[part]]
        ranges[country] = (start, len(entries))
    return entries, ranges


_foreign_given, _foreign_given_ranges = _foreign_entries(0)
_foreign_family, _foreign_family_ranges = _foreign_entries(1)

_given_entries = MALE + FEMALE + _foreign_given
# A registry clerk writes one of the two commonest spellings of a given name (Mohammed or
# Mohamed, rarely Mohamad), and a family name as the family itself spells it.
GIVEN = _build(_given_entries, [min(2, len(lat)) for _, lat, _ in _given_entries])
_family_entries = [(ar, _family_spellings(lat), w) for ar, lat, w in FAMILY] + _foreign_family
SURNAMES = _build(_family_entries, [len(lat) for _, lat, _ in FAMILY] + [1] * len(_foreign_family))

MALE_RANGE = (0, len(MALE))
FEMALE_RANGE = (len(MALE), len(MALE) + len(FEMALE))


def foreign_given_range(country: str) -> tuple[int, int]:
    lo, hi = _foreign_given_ranges[country]
    return lo + FEMALE_RANGE[1], hi + FEMALE_RANGE[1]


def foreign_family_range(country: str) -> tuple[int, int]:
    lo, hi = _foreign_family_ranges[country]
    return lo + len(FAMILY), hi + len(FAMILY)
