"""remote_job's params: a secret goes only where the secrets file binds it, and never shows.

Refused at submit (a 422 naming why), so no remote server is needed: the
secret is bound to an address nothing listens on.
"""

import os

import pytest

from tests.conftest import write_secrets

BASE, TOKEN = "http://deck.test:8000", "td_not-a-real-token"


@pytest.fixture
def secret(tmp_path, monkeypatch):
    path = write_secrets(tmp_path / "secrets.toml", there=(TOKEN, BASE))
    monkeypatch.setenv("TASKDECK_SECRETS_FILE", path)
    return TOKEN


@pytest.mark.parametrize(
    "change, named",
    [
        ({"url": "http://127.0.0.1:9/"}, "may only be sent to"),  # elsewhere: refused
        ({"url": BASE + ".evil.example"}, "may only be sent to"),  # a look-alike host
        ({"url": BASE + "-other/x"}, "may only be sent to"),  # a sibling path
        ({"secret": "nobody"}, "No secret named 'nobody'"),
        ({"url": "http://admin:pw@127.0.0.1:9"}, "must not hold a user name"),
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": "http://x/\r\nHost: y"}, "plain address"),
        ({"secret": "../etc"}, "secret"),
        ({"adapter": "ftp"}, "adapter"),
    ],
)
def test_params_that_would_misuse_a_secret_are_refused(api, secret, change, named):
    alice = api("alice")
    params = {"adapter": "taskdeck", "url": BASE, "secret": "there", "input": {}, **change}
    response = alice.post("/tasks", json={"type": "remote_job", "params": params})
    assert response.status_code == 422, response.get_json()
    assert named in response.get_json()["detail"]
    assert secret not in response.get_data(as_text=True)


def test_a_secret_bound_to_an_address_may_go_below_it(api, secret):
    params = {"adapter": "taskdeck", "url": BASE + "/", "secret": "there"}
    response = api("alice").post("/tasks", json={"type": "remote_job", "params": params})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["params"]["url"] == BASE  # stored without the slash


def test_a_secrets_file_others_can_read_is_refused(api, tmp_path, monkeypatch):
    path = write_secrets(tmp_path / "open.toml", there=(TOKEN, BASE))
    os.chmod(path, 0o644)
    monkeypatch.setenv("TASKDECK_SECRETS_FILE", path)
    alice = api("alice")
    params = {"adapter": "taskdeck", "url": BASE, "secret": "there"}
    response = alice.post("/tasks", json={"type": "remote_job", "params": params})
    assert response.status_code == 422 and "owner only" in response.get_json()["detail"]
    assert TOKEN not in response.get_data(as_text=True)
