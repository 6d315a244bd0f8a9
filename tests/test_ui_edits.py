"""Alias editing on the page: off unless asked, refused without this session's token or from
another origin, and the same alias rules and compare-and-swap as the API."""

from __future__ import annotations

import re

import pytest
import uiseed

from artifactfs.ui.web import create_app

PAGE = "/a/acme/mnist/digits:v1/files/"
EDIT = "/a/acme/mnist/digits:v1/aliases"
ORIGIN = {"Origin": "http://localhost"}


@pytest.fixture
def seeded(tmp_path):
    with uiseed.seeded_registry(tmp_path) as s:
        yield s


def _aliases(seeded):
    reg = seeded.resolver.registry
    reg.invalidate()
    return reg.aliases("acme", "mnist", "digits")


def _token(client, url=PAGE):
    page = client.get(url).text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_edits_are_refused_without_allow_edits(seeded):
    client = create_app(seeded.resolver).test_client()
    page = client.get(PAGE).text
    assert 'id="alias-editor"' not in page and 'name="csrf"' not in page
    assert "Set-Cookie" not in client.get(PAGE).headers  # no session when nothing can change
    r = client.post(EDIT, data={"action": "add", "alias": "prod", "csrf": "x"}, headers=ORIGIN)
    assert r.status_code == 403 and "--allow-edits" in r.text
    assert "prod" not in _aliases(seeded)


def test_an_edit_without_the_token_is_refused(seeded):
    client = create_app(seeded.resolver, allow_edits=True).test_client()
    token = _token(client)
    for data, headers in [
        ({"action": "add", "alias": "prod"}, ORIGIN),  # no token
        ({"action": "add", "alias": "prod", "csrf": "forged"}, ORIGIN),  # a wrong one
        ({"action": "add", "alias": "prod", "csrf": token}, {"Origin": "http://evil.example"}),
        ({"action": "add", "alias": "prod", "csrf": token}, {"Origin": "null"}),
    ]:
        r = client.post(EDIT, data=data, headers=headers)
        assert r.status_code == 403, (data, headers)
    other = create_app(seeded.resolver, allow_edits=True).test_client()  # another session
    r = other.post(EDIT, data={"action": "add", "alias": "prod", "csrf": token}, headers=ORIGIN)
    assert r.status_code == 403
    assert "prod" not in _aliases(seeded)


def test_add_move_and_remove(seeded):
    client = create_app(seeded.resolver, allow_edits=True).test_client()
    token = _token(client)

    def post(url=EDIT, **data):
        return client.post(url, data={"csrf": token, **data}, headers=ORIGIN)

    r = post(action="add", alias="prod")
    assert r.status_code == 303 and r.headers["Location"] == PAGE
    assert _aliases(seeded)["prod"] == 1
    # `stable` is on v0: adding it here asks first, then moves it on the version it was seen on
    r = post(action="add", alias="stable")
    assert r.status_code == 200 and 'id="confirm-move"' in r.text and 'value="v0"' in r.text
    assert _aliases(seeded)["stable"] == 0
    assert post(action="add", alias="stable", seen="v0").status_code == 303
    assert _aliases(seeded)["stable"] == 1
    # compare-and-swap: moving `prod` to v0 as seen on v0 fails, it is on v1 now
    r = post("/a/acme/mnist/digits:v0/aliases", action="add", alias="prod", seen="v0")
    assert r.status_code == 409 and "nothing changed" in r.text
    assert _aliases(seeded)["prod"] == 1
    assert post(action="remove", alias="prod").status_code == 303
    assert "prod" not in _aliases(seeded)
    # the API's rules: `latest` is the registry's, `vN` names a version, names are checked
    for alias in ("latest", "v3", "bad/name", "bad:name", ""):
        assert post(action="add", alias=alias).status_code == 400, alias
    assert post(action="remove", alias="latest").status_code == 400
    assert _aliases(seeded)["latest"] == 1
