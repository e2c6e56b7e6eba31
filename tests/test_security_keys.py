"""The keyring: identifiers encrypted at rest, their blind index, the key file's life."""

import json
import os
import stat
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sijill.core.settings import Settings
from sijill.security.keys import keyring as keys
from sijill.security.keys.keyring import DecryptionError, Keyring, KeyringError, add_key, remove_key

NUMBER = "10000000146"
PHONE = "+962791234567"


@pytest.fixture
def key_path(tmp_path):
    return tmp_path / "keys.json"


@pytest.fixture
def keyring(key_path):
    return Keyring.load(key_path)


def test_missing_key_file_is_created_private_with_every_key(key_path, keyring):
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    data = json.loads(key_path.read_text())
    assert list(data["keys"]) == [data["active"]] == keyring.key_ids
    assert {"index_key", "token_key", "pseudonym_key"} <= data.keys()
    assert len(keyring.token_key) == 32
    assert Keyring.load(key_path).token_key == keyring.token_key


def test_round_trip_and_compact_ascii_token(keyring):
    token = keyring.encrypt("national_id", NUMBER)
    assert token.startswith(f"{keyring.active}.") and token.isascii() and NUMBER not in token
    assert len(token) <= 66
    assert keyring.decrypt("national_id", token) == NUMBER
    # A fresh nonce each time: equal numbers do not give equal ciphertexts.
    assert keyring.encrypt("national_id", NUMBER) != token
    assert keyring.decrypt_many("phone", [None, keyring.encrypt("phone", PHONE)]) == [None, PHONE]


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["national_id", "phone", "any_column"]),
    value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
)
def test_encrypt_decrypt_round_trip_property(tmp_path_factory, field, value):
    keyring = _shared_keyring(tmp_path_factory)
    token = keyring.encrypt(field, value)
    assert keyring.decrypt(field, token) == value


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.none() | st.text(st.characters(blacklist_categories=("Cs",))), max_size=30)
)
def test_a_column_encrypts_as_the_values_one_by_one(tmp_path_factory, values):
    """The bulk path's column (nulls kept in place, any length of text) decrypts to the
    values, in tokens of the same form as `encrypt` makes."""
    keyring = _shared_keyring(tmp_path_factory)
    tokens = keyring.encrypt_many("phone", values)
    assert [t is None for t in tokens] == [v is None for v in values]
    assert keyring.decrypt_many("phone", tokens) == values
    single = keyring.encrypt("phone", "x")
    assert all(
        t.startswith(f"{keyring.active}.") and "=" not in t and t.isascii() for t in tokens if t
    )
    assert "=" not in single


_SHARED: dict[str, Keyring] = {}


def _shared_keyring(tmp_path_factory) -> Keyring:
    if "keyring" not in _SHARED:
        _SHARED["keyring"] = Keyring.load(tmp_path_factory.mktemp("prop") / "keys.json")
    return _SHARED["keyring"]


def test_key_ids_are_fingerprints_unique_to_their_keyring(tmp_path):
    """Two keyrings made apart never name a key alike (every new one used to say `k1`), and
    an id is derived from its key, never the key itself."""
    ids = [Keyring.load(tmp_path / f"keys-{n}.json").active for n in range(20)]
    assert len(set(ids)) == 20 and all(keys.KEY_ID.fullmatch(kid) for kid in ids)
    data = json.loads((tmp_path / "keys-0.json").read_text())
    kid, secret = next(iter(data["keys"].items()))
    assert kid == keys.fingerprint(keys._unb64(secret)) and kid not in secret


# A key file as Sijill wrote them before fingerprints (keys named k1, k2, ...), and a token the
# code of that time encrypted with it: old ids stay valid.
_OLD_FILE = {
    "active": "k1",
    "keys": {"k1": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"},
    "index_key": "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI",
    "token_key": "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM",
    "pseudonym_key": "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ",
}
_OLD_TOKEN = "k1._givqjhRfttEZ_1nf5Peyi--q6ApvLRKHr6Ns6_p0ZVXFavBLqZY"


def test_a_key_file_of_numbered_keys_still_reads_what_it_encrypted(key_path):
    key_path.write_text(json.dumps(_OLD_FILE))
    os.chmod(key_path, 0o600)
    keyring = Keyring.load(key_path)
    assert keyring.decrypt("national_id", _OLD_TOKEN) == NUMBER
    assert keyring.blind_index(NUMBER) == "d8cfd516ad99b3fe6878058f957793d0"
    assert keyring.encrypt("phone", PHONE).startswith("k1.")
    kid = add_key(key_path)
    keyring.reload()
    assert keyring.key_ids == ["k1", kid] and kid == keyring.active != "k1"
    assert keyring.decrypt("national_id", _OLD_TOKEN) == NUMBER


def test_tampered_ciphertext_is_refused_without_showing_the_value(keyring):
    token = keyring.encrypt("national_id", NUMBER)
    kid, body = token.split(".")
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(DecryptionError) as refused:
        keyring.decrypt("national_id", f"{kid}.{flipped}")
    assert NUMBER not in str(refused.value) and flipped not in str(refused.value)
    with pytest.raises(DecryptionError):
        keyring.decrypt("national_id", token[:-4])
    with pytest.raises(DecryptionError):
        keyring.decrypt("national_id", NUMBER)  # a clear value is not a token


def test_ciphertext_moved_to_another_column_is_refused(keyring):
    token = keyring.encrypt("phone", PHONE)
    with pytest.raises(DecryptionError, match="another column"):
        keyring.decrypt("national_id", token)


def test_ciphertext_relabelled_with_another_key_id_is_refused(key_path, keyring):
    token = keyring.encrypt("national_id", NUMBER)
    add_key(key_path)
    keyring.reload()
    with pytest.raises(DecryptionError):
        keyring.decrypt("national_id", f"{keyring.active}." + token.split(".", 1)[1])


def test_unknown_key_id_reloads_the_key_file_once(key_path, keyring):
    # Another process adds a key and writes under it; this one has never seen the key.
    kid = add_key(key_path)
    token = Keyring.load(key_path).encrypt("national_id", NUMBER)
    assert token.startswith(f"{kid}.") and kid not in keyring.key_ids
    assert keyring.decrypt("national_id", token) == NUMBER
    assert keyring.key_ids[1:] == [kid]
    with pytest.raises(DecryptionError, match="'k9'"):
        keyring.decrypt("national_id", "k9." + token.split(".", 1)[1])


def test_running_process_switches_to_a_newly_added_active_key(key_path, keyring, monkeypatch):
    monkeypatch.setattr(keys, "REFRESH_SECONDS", 0.0)
    first = keyring.active
    assert keyring.encrypt("phone", PHONE).startswith(f"{first}.")
    kid = add_key(key_path)
    assert kid != first and keyring.encrypt("phone", PHONE).startswith(f"{kid}.")


def test_workers_starting_together_share_one_new_key_file(tmp_path):
    path = tmp_path / "fresh" / "keys.json"
    barrier = threading.Barrier(8)
    loaded: list[bytes] = []

    def start() -> None:
        barrier.wait()
        loaded.append(Keyring.load(path).token_key)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 8 and len(set(loaded)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]


def test_key_file_readable_by_others_is_refused(key_path, keyring):
    os.chmod(key_path, 0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        Keyring.load(key_path)


def test_damaged_key_file_is_refused_without_key_material(key_path, keyring):
    data = json.loads(key_path.read_text())
    secret = data["keys"][keyring.active]
    data["keys"][keyring.active] = secret[:-3]
    key_path.write_text(json.dumps(data))
    with pytest.raises(KeyringError, match=f"key {keyring.active}") as refused:
        Keyring.load(key_path)
    assert secret[:10] not in str(refused.value)
    key_path.write_text("{not json")
    with pytest.raises(KeyringError, match="not valid JSON"):
        Keyring.load(key_path)
    data["keys"] = {"k_1": secret}
    key_path.write_text(json.dumps(data))
    with pytest.raises(KeyringError, match="letters or digits"):
        Keyring.load(key_path)


def test_blind_index_is_deterministic_keyed_and_short(tmp_path, keyring):
    index = keyring.blind_index(NUMBER)
    assert len(index) == 32 and int(index, 16) >= 0
    assert keyring.blind_index(NUMBER) == index
    assert keyring.blind_index("10000000147") != index
    assert keyring.blind_index(NUMBER, field="phone") != index
    assert keyring.blind_index_many([NUMBER, None]) == [index, None]
    assert Keyring.load(tmp_path / "other.json").blind_index(NUMBER) != index


def test_pseudonym_is_stable_and_namespaced(tmp_path, keyring):
    pseudonym = keyring.pseudonym("household", "1000561627")
    assert pseudonym == keyring.pseudonym("household", "1000561627")
    assert pseudonym != keyring.pseudonym("person", "1000561627")
    assert pseudonym != Keyring.load(tmp_path / "other.json").pseudonym("household", "1000561627")
    assert len(pseudonym) == 32


def test_add_and_remove_keys(key_path, keyring):
    token = keyring.encrypt("national_id", NUMBER)
    first = keyring.active
    second, third = add_key(key_path), add_key(key_path)
    reloaded = Keyring.load(key_path)
    assert reloaded.active == third and reloaded.key_ids == [first, second, third]
    assert reloaded.decrypt("national_id", token) == NUMBER
    assert reloaded.token_key == keyring.token_key  # the other keys are kept
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with pytest.raises(KeyringError, match="active key"):
        remove_key(key_path, third)
    with pytest.raises(KeyringError, match="no key"):
        remove_key(key_path, "k7")
    remove_key(key_path, second)
    assert Keyring.load(key_path).key_ids == [first, third]


def test_concurrent_additions_lose_no_key(key_path, keyring):
    threads = [threading.Thread(target=add_key, args=(key_path,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(Keyring.load(key_path).key_ids)) == 7


def test_install_keyring_makes_it_current(key_path, monkeypatch):
    monkeypatch.setattr(keys, "_current", None)
    installed = keys.install_keyring(Settings(key_file=key_path))
    assert keys.current_keyring() is installed
    monkeypatch.setattr(keys, "_current", None)
    monkeypatch.setenv("SIJILL_KEY_FILE", str(key_path))
    assert keys.current_keyring().token_key == installed.token_key


# --- identifiers as the registry stores them ---------------------------------------------


def test_registry_stores_identifiers_encrypted_and_finds_them_by_blind_index(sessions, engine):
    from datetime import UTC, datetime

    from sqlalchemy import select, text

    from sijill.registry import identifiers
    from sijill.registry.identifiers import Identifiers
    from sijill.registry.models import Person

    now = datetime(2025, 1, 1, tzinfo=UTC)
    with sessions() as session, session.begin():
        for person_id, ids in (
            (1, Identifiers("national_id", NUMBER, PHONE)),
            (2, Identifiers("passport", "N1234567", None)),
            (3, Identifiers()),
        ):
            person = Person(id=person_id, version=1, valid_from=now, recorded_by="test")
            identifiers.write(person, ids)
            session.add(person)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT national_id, phone, national_id_index, national_id_type FROM person")
        ).all()
    assert NUMBER not in repr(rows) and PHONE not in repr(rows) and "N1234567" not in repr(rows)
    assert {row.national_id_type for row in rows} == {"national_id", "passport", None}
    with sessions() as session:
        found = identifiers.find_by_national_id(session, f"{NUMBER[:3]}-{NUMBER[3:]}")
        assert [p.id for p in found] == [1]
        assert identifiers.read(found[0]) == Identifiers("national_id", NUMBER, PHONE)
        assert [p.id for p in identifiers.find_by_national_id(session, "n1234567")] == [2]
        assert identifiers.holders_of_national_ids(session, [NUMBER, "10000000147"]) == {
            NUMBER: [1]
        }
        # A passport number is no citizen's national ID.
        assert identifiers.holders_of_national_ids(session, ["N1234567"]) == {}
        matched = session.scalars(
            select(Person.id).where(identifiers.national_id_matches(f" {NUMBER} "))
        )
        assert list(matched) == [1]
        assert identifiers.read(session.get(Person, 3)) == Identifiers()
