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


def test_every_job_names_a_secret_so_only_listed_addresses_are_reached(api, secret):
    params = {"adapter": "runpod", "url": "http://127.0.0.1:5432/x", "input": {}}
    response = api("alice").post("/tasks", json={"type": "remote_job", "params": params})
    assert response.status_code == 422 and "secret" in response.get_json()["detail"]


@pytest.mark.parametrize("path", ["/../team-b", "/%2e%2e/team-b", "/..%2fteam-b", "/./x", "/a%2Fb"])
def test_dot_segments_cannot_walk_out_of_a_secret_s_path(api, secret, path):
    params = {"adapter": "taskdeck", "url": BASE + path, "secret": "there"}
    response = api("alice").post("/tasks", json={"type": "remote_job", "params": params})
    assert response.status_code == 422, response.get_json()
    assert "segments" in response.get_json()["detail"]


def test_a_remote_answer_is_blanked_of_the_key_however_it_is_written():
    from tasks.pipelines.adapters import _fraction, _part
    from tasks.pipelines.bearer import Http

    http = Http("http://deck.test", "k\\ey-123")
    assert "k\\ey" not in http.said({"detail": {"echo": "k\\ey-123", "list": ["k\\ey-123"]}})
    assert _part("../x/y?z") == "..%2Fx%2Fy%3Fz"  # a job id stays one path segment
    assert [_fraction(v) for v in (0.5, "half", float("nan"), 2, True, None)] == [
        0.5,
        None,
        None,
        None,
        None,
        None,
    ]
