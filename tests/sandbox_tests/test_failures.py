"""Sandbox failure modes of real instances (issue 11): failing entities, lockout, unstable ids."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import requests

from tests.support import REPO, Sandbox

V = "/entity/Default/24.200.001"
SandboxFactory = Callable[..., Sandbox]


def sign_in(sbx: Sandbox, password: str | None = None) -> tuple[requests.Session, int, Any]:
    """A cookie login; returns the session, the status and the decoded body (None on 204)."""
    creds = sbx.credentials()
    s = requests.Session()
    r = s.post(
        f"{sbx.url}/entity/auth/login",
        json={
            "name": creds["username"],
            "password": creds["password"] if password is None else password,
            "tenant": creds["tenant"],
        },
        timeout=30,
    )
    return s, r.status_code, (r.json() if r.content else None)


def password_grant(sbx: Sandbox, password: str | None = None) -> requests.Response:
    creds = sbx.credentials()
    return requests.post(
        f"{sbx.url}/identity/connect/token",
        data={
            "grant_type": "password",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "username": creds["username"],
            "password": creds["password"] if password is None else password,
            "scope": "api",
        },
        timeout=30,
    )


def test_forbidden_not_set_up_and_optimization_errors(sandbox_factory: SandboxFactory) -> None:
    sbx = sandbox_factory(
        "--records",
        "20",
        "--forbidden",
        "Employee,Vendor",
        "--not-set-up",
        "Project",
        "--optimization-error",
        "JournalTransaction",
    )
    s, status, _ = sign_in(sbx)
    assert status == 204
    # 403 on every request on the entity (api.md §9): list, by key, by id, $adHocSchema.
    for path in ("Employee?$top=1", "Employee/EP000001", "Vendor/$adHocSchema", "Vendor"):
        r = s.get(f"{sbx.url}{V}/{path}", timeout=30)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["exceptionType"] == "PX.Data.PXNotEnoughRightsException"
    # 500 PXSetupNotEnteredException on every request (api.md §9).
    for path in ("Project", "Project?$select=ProjectID", "Project/PRJ000001"):
        r = s.get(f"{sbx.url}{V}/{path}", timeout=30)
        assert r.status_code == 500, (path, r.text)
        body = r.json()
        assert set(body) == {"message", "exceptionMessage", "exceptionType", "stackTrace"}
        assert body["exceptionType"].startswith("PX.Data.PXSetupNotEnteredException")
        assert body["exceptionMessage"] == (
            "The required configuration data is not entered on the Projects Preferences form."
        )
    # Optimization error only with $select (api.md §4); without it the same list works.
    r = s.get(f"{sbx.url}{V}/JournalTransaction?$top=3&$select=BatchNbr,Module", timeout=30)
    assert r.status_code == 500
    body = r.json()
    assert body["exceptionType"].endswith("CannotOptimizeException")
    assert body["exceptionMessage"].startswith("Optimization cannot be performed.")
    assert "BatchNbr" in body["exceptionMessage"]
    r = s.get(f"{sbx.url}{V}/JournalTransaction?$top=3", timeout=30)
    assert r.status_code == 200
    assert len(r.json()) == 3
    # Entities not named keep working, with and without $select; swagger still lists them all.
    r = s.get(f"{sbx.url}{V}/Customer?$top=2&$select=CustomerID", timeout=30)
    assert (r.status_code, len(r.json())) == (200, 2)
    doc = s.get(f"{sbx.url}{V}/swagger.json", timeout=30).json()
    assert {"Employee", "Project", "JournalTransaction"} <= set(doc["components"]["schemas"])


def test_defaults_fail_one_entity_each_and_unknown_names_are_refused(
    sandbox_factory: SandboxFactory,
) -> None:
    sbx = sandbox_factory("--records", "20")
    s, status, _ = sign_in(sbx)
    assert status == 204
    for entity, key, expected in (
        ("Employee", "EmployeeID", 403),  # --forbidden Employee
        ("Project", "ProjectID", 500),  # --not-set-up Project
        ("JournalTransaction", "BatchNbr", 200),
        ("Payment", "ReferenceNbr", 500),  # --optimization-error Payment: only with $select
    ):
        r = s.get(f"{sbx.url}{V}/{entity}?$top=1&$select={key}", timeout=30)
        assert r.status_code == expected, (entity, r.text)
    assert s.get(f"{sbx.url}{V}/Payment?$top=1", timeout=30).status_code == 200
    none = sandbox_factory(
        "--records", "20", "--forbidden", "", "--not-set-up", "", "--optimization-error", ""
    )
    s, status, _ = sign_in(none)
    assert status == 204
    for entity, key in (("Employee", "EmployeeID"), ("Project", "ProjectID"), ("Payment", "Type")):
        r = s.get(f"{none.url}{V}/{entity}?$top=1&$select={key}", timeout=30)
        assert r.status_code == 200, (entity, r.text)
    assert sbx.stats()["failed_logins"] == 0
    proc = subprocess.run(
        [sys.executable, "-m", "tests.sandbox", "--port", "0", "--forbidden", "Nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown entity Nope" in proc.stderr


def test_cookie_lockout_refuses_the_right_password_until_reset(
    sandbox_factory: SandboxFactory,
) -> None:
    sbx = sandbox_factory("--records", "5", "--lockout-after", "3")
    # A success resets the counter: 2 wrong, 1 right, 2 wrong → still not locked.
    for password in ("sbxpw-wrong", "sbxpw-wrong", None, "sbxpw-wrong", "sbxpw-wrong"):
        s, status, body = sign_in(sbx, password)
        if password is None:
            assert status == 204
            s.post(f"{sbx.url}/entity/auth/logout", timeout=30)
        else:
            assert status == 500
            assert "Invalid credentials" in body["exceptionMessage"]
    assert sbx.stats()["locked_out"] is False
    _, status, body = sign_in(sbx, "sbxpw-wrong")  # third in a row: locked
    assert status == 500
    assert sbx.stats()["locked_out"] is True
    _, status, body = sign_in(sbx)  # the right password is refused now
    assert status == 500
    assert "locked out" in body["exceptionMessage"]
    assert body["exceptionType"] == "PX.Data.PXException"
    r = password_grant(sbx)  # and so is the password grant
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    assert "locked out" in r.json()["error_description"]
    stats = sbx.stats()
    assert stats["failed_logins"] == 7
    assert stats["logins"] == 1
    sbx.admin("POST", "reset")
    assert sbx.stats()["failed_logins"] == 0
    _, status, _ = sign_in(sbx)
    assert status == 204


def test_password_grant_lockout_and_unknown_users(sandbox_factory: SandboxFactory) -> None:
    sbx = sandbox_factory("--records", "5", "--lockout-after", "2")
    # Another user name or another tenant locks nobody (but counts as a failed sign-in).
    creds = sbx.credentials()
    for body in (
        {"name": "someone", "password": "x", "tenant": "Company"},
        {"name": "admin", "password": "x", "tenant": "Other"},
        {"name": "someone", "password": "y", "tenant": "Company"},
    ):
        r = requests.post(f"{sbx.url}/entity/auth/login", json=body, timeout=30)
        assert r.status_code == 500
    r = requests.post(
        f"{sbx.url}/identity/connect/token",
        data={
            "grant_type": "password",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "username": "someone",
            "password": "x",
        },
        timeout=30,
    )
    assert r.json()["error"] == "invalid_grant"
    assert sbx.stats()["locked_out"] is False
    assert sbx.stats()["failed_logins"] == 4
    # A wrong client secret never checks the password: no count.
    bad_client = {**creds, "client_secret": "sbxcs-wrong"}
    r = requests.post(
        f"{sbx.url}/identity/connect/token",
        data={
            "grant_type": "password",
            "client_id": bad_client["client_id"],
            "client_secret": bad_client["client_secret"],
            "username": "admin",
            "password": "sbxpw-wrong",
        },
        timeout=30,
    )
    assert r.json()["error"] == "invalid_client"
    for _ in range(2):
        r = password_grant(sbx, "sbxpw-wrong")
        assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
        assert "locked" not in r.json().get("error_description", "")
    r = password_grant(sbx)
    assert r.status_code == 400
    assert "locked out" in r.json()["error_description"]
    _, status, body = sign_in(sbx)
    assert (status, "locked out" in body["exceptionMessage"]) == (500, True)
    sbx.admin("POST", "reset")
    r = password_grant(sbx)
    assert r.status_code == 200, r.text


def test_lockout_zero_never_locks(sandbox_factory: SandboxFactory) -> None:
    sbx = sandbox_factory("--records", "5", "--lockout-after", "0")
    for _ in range(8):
        _, status, _ = sign_in(sbx, "sbxpw-wrong")
        assert status == 500
    _, status, _ = sign_in(sbx)
    assert status == 204
    assert sbx.stats()["failed_logins"] == 8


def ids(s: requests.Session, url: str) -> list[str]:
    r = s.get(url, timeout=30)
    assert r.status_code == 200, r.text
    return [rec["id"] for rec in r.json()]


def test_unstable_ids_change_per_session(sandbox_factory: SandboxFactory) -> None:
    sbx = sandbox_factory("--records", "20", "--unstable-ids", "Contact", "--api-seats", "3")
    url = f"{sbx.url}{V}/Contact?$top=5"
    truth = [r["id"] for r in sbx.ground_truth("Contact")["live"][:5]]
    one, status, _ = sign_in(sbx)
    assert status == 204
    first = ids(one, url)
    assert ids(one, url) == first  # stable within a session
    assert len(set(first)) == 5
    assert not set(first) & set(truth)  # not the stored NoteIDs
    # GET by the session's id works in that session and echoes the same id and links.
    r = one.get(f"{sbx.url}{V}/Contact/{first[2]}", timeout=30)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["id"] == first[2]
    assert first[2] in rec["_links"]["self"]
    two, status, _ = sign_in(sbx)
    assert status == 204
    second = ids(two, url)
    assert not set(first) & set(second)  # another sign-in, other ids
    assert ids(two, url) == second
    # The other session's id finds nothing (api.md §9 not-found 500).
    r = two.get(f"{sbx.url}{V}/Contact/{first[2]}", timeout=30)
    assert r.status_code == 500
    # A bearer session has its own ids, stable across its requests.
    token = password_grant(sbx).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    r1 = requests.get(url, headers=headers, timeout=30).json()
    r2 = requests.get(url, headers=headers, timeout=30).json()
    assert [x["id"] for x in r1] == [x["id"] for x in r2]
    assert not {x["id"] for x in r1} & (set(first) | set(second))
    # Other entities keep their NoteIDs.
    cust = ids(one, f"{sbx.url}{V}/Customer?$top=3")
    assert cust == [r["id"] for r in sbx.ground_truth("Customer")["live"][:3]]
