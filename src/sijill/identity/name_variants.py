"""The tables `match_keys` reads: data, not code. Edit them here; the rules that apply them
live in `match_keys.py`.

VARIANTS maps one spelling of a name (the key) to the Latin spellings clerks write for the
same Arabic name. Spellings are written as found; `match_keys` runs its general spelling rules
(ou → u, ch → sh, doubled letters once, ...) over both sides before comparing, so a variant
that those rules already reach (Mohammed → Mohamed) need not be listed. Only list spellings of
the same Arabic name: Salem (سالم) and Salim (سليم), Salah (صلاح) and Saleh (صالح), Said (سعيد)
and Saad (سعد), Nasser (ناصر) and Yasser (ياسر), Amin and Amina are different names.

PARTICLES maps the separate words that mark descent, tribe or a kunya (Maghreb and Levant
names alike) to one canonical particle. They are kept apart from the name they precede: "Ben
Salah" and "بن صالح" are the particle "bin" and the name "salah".
"""

VARIANTS: dict[str, list[str]] = {
    "muhammad": ["mohamed", "mohamad", "muhamed", "mouhamed", "mohd", "mhamed", "mohmed"],
    "ahmad": ["ahmed", "ahmet", "hmed"],
    "mahmud": ["mahmoud", "mahmood"],
    "mustafa": ["mostafa", "moustafa", "mustapha", "moustapha", "mostapha"],
    "yusuf": ["youssef", "yousef", "yousif", "yusef", "youcef", "youssouf", "yossef", "yusif"],
    "ibrahim": ["brahim", "ebrahim", "ibraheem", "ibrahime"],
    "ismail": ["smail", "ismael", "esmail", "ismaeel"],
    "ilyas": ["elias", "elyas", "elyes", "ilias", "iliass", "ilies"],
    "ilham": ["elham"],
    "abdallah": ["abdalla", "abdulla", "abdellah", "abdoullah", "abdella"],
    "uthman": ["othman", "osman", "usman", "othmane", "otman", "otmane", "osmane", "outhmane"],
    "umar": ["omar", "omer", "oumar", "umer"],
    "ali": ["aly", "alee"],
    "husayn": ["hussein", "hussain", "husain", "hocine", "houcine", "hossein", "husein"],
    "hasan": ["hassan", "hassane", "hasane", "hacen", "hassen", "hasen"],
    "khalid": ["khaled", "khaleed"],
    "said": ["saeed", "saied", "saed"],
    "rashid": ["rachid", "rasheed", "rachide"],
    "hisham": ["hicham", "hesham", "hichem"],
    "walid": ["oualid", "waleed"],
    "yasin": ["yassine", "yassin", "yaseen", "yacine", "yessine"],
    "amin": ["amine", "ameen"],
    "karim": ["kareem", "karime"],
    "tariq": ["tarek", "tarik", "tareq"],
    "zakariya": ["zakaria", "zakariyya", "zakarya", "zacharia"],
    "fatima": ["fatma", "fatimah", "fatema", "fatime"],
    "aisha": ["aicha", "aysha", "aishah", "aiche"],
    "khadija": ["khadidja", "khadeeja", "khadijah", "khedija", "khadiga"],
    "maryam": ["mariam", "meriem", "mariem", "meryem", "myriam"],
    "zaynab": ["zainab", "zineb", "zeinab", "zaineb"],
    "nur": ["nour", "noor"],
    "suad": ["souad", "soad"],
    "asma": ["asmaa", "asmae"],
    "hamza": ["hamzah"],
    "usama": ["oussama", "osama", "ousama", "oussema"],
    "jamal": ["djamel", "jamel", "gamal", "djamal", "jamaal"],
    "jamila": ["djamila", "gamila"],
    "mahdi": ["mehdi", "mahdy"],
    "salih": ["saleh"],
    "salim": ["selim", "saleem"],
    "nabil": ["nabeel"],
    "adil": ["adel", "adeel"],
    "nasir": ["nasser", "naser", "nacer"],
    "yasir": ["yasser", "yaser", "yassir"],
    "mansur": ["mansour", "mansoor"],
    "murad": ["mourad", "morad"],
    "ridwan": ["redouane", "radwan", "ridouane", "redwan"],
    "rida": ["reda", "ridha", "redha"],
    "yahya": ["yahia", "yehia", "yahiya", "yehya"],
    "isa": ["issa", "aissa", "eissa"],
    "musa": ["moussa", "mousa", "moosa"],
    "idris": ["driss", "idriss", "edris"],
    "sulayman": ["slimane", "souleymane", "sulaiman", "suleiman", "soliman", "sleiman"],
    "ayyub": ["ayoub", "ayub"],
    "yaqub": ["yacoub", "yaakoub", "yakoub", "yaqoob"],
}

PARTICLES: dict[str, list[str]] = {
    "bin": ["ben", "bin", "ibn", "ebn", "بن", "ابن"],
    "bint": ["bent", "bint", "بنت"],
    "ould": ["ould", "ouled", "oulad", "wuld", "weld", "ولد", "اولاد"],
    "mint": ["mint", "منت"],
    "ait": ["ait", "ايت"],
    "abu": ["abu", "abou", "abo", "bou", "ابو"],
    "umm": ["umm", "um", "oum", "om", "ام"],
    # The article and its sun-letter forms (ar-Rashid, es-Sayed, ech-Chafi, en-Nour).
    "al": ["al", "el", "ul", "ar", "er", "as", "es", "ash", "esh", "ech", "at", "et"]
    + ["ad", "ed", "az", "ez", "an", "en", "ال"],
}

# Words that begin with ال but where it is no article: the name keeps it in every script.
# الله and الدين stay inside compounds (فضل الله, نور الدين) as Latin writes them (Fadlallah,
# Noureddine).
ARABIC_AL_WORDS: list[str] = ["الله", "الدين", "الياس", "الهام", "اليسع", "الفت"]
