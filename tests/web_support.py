"""What the web page tests share: users with a password of their own, signing in through the
form, and the CSRF token a page carries."""

import re

from factories import make_user
from sijill.core.db import transaction
from sijill.security.users.accounts import change_password

PASSWORD = "a long pass phrase for the tests"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def web_user(sessions, username: str, role: str, area_code: str | None = None) -> str:
    """A user who has chosen their password (a new account's is one-time); their name."""
    secret = make_user(sessions, username, role, area_code)
    with transaction(sessions) as session:
        change_password(session, username, secret, PASSWORD)
    return username


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client, username: str, password: str = PASSWORD, next: str = "/web/households"):
    form = client.get("/web/sign-in")
    return client.post(
        "/web/sign-in",
        data={"username": username, "password": password, "csrf": csrf_of(form.text), "next": next},
        follow_redirects=False,
    )
