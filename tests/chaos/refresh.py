"""Kill-during-refresh trials at volume: ``python -m tests.chaos.refresh CONFIG TRIALS SEED OUT``.

The kill moment is uniform over 1.2 times the time a whole refresh takes on this machine
(re-measured every 50 trials), so kills land before, during and after refreshes alike.


One process imports the tap's authenticator once, then for every trial forks a child that
builds the real authenticator (``initiate_oauth=REFRESH``, the file token store) and asks it
for a credential — which must refresh, since the store holds no access token. The parent
sends SIGKILL at a random moment while the sandbox holds the token answer back
(``--token-delay-ms``), then checks the store: valid JSON, and a refresh token the server
still accepts (spending it, and storing the successor, keeps the chain going). Forking keeps
a trial at a few milliseconds of CPU, so a thousand trials fit in minutes; the children are
real processes with real files, locks and sockets, so SIGKILL means what it means.

Outcome of a trial whose chain died, when the store still holds the token it had and is
marked "refresh in flight" for it: the server rotated while its answer was on the way (after
its delay), a window no client can close; any other dead chain is the tap's fault.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tap_acumatica.auth import factory as auth
from tap_acumatica.auth.config import tenant_of
from tap_acumatica.auth.tokenstore import StoredTokens, TokenSet, TokenStore, fingerprint, sha256

ENTITY = "/entity/Default/24.200.001/Customer"


def main(argv: list[str]) -> int:
    """Run the trials; write the counts as JSON to OUT."""
    cfg_path, trials, seed, out = argv[0], int(argv[1]), int(argv[2]), argv[3]
    cfg: dict[str, Any] = json.loads(Path(cfg_path).read_text(encoding="utf-8"))
    creds = requests.get(_root(cfg["base_url"]) + "/_sandbox/credentials", timeout=30).json()
    store = TokenStore(cfg["oauth_settings_location"])
    fp = fingerprint(
        cfg["client_id"],
        cfg["base_url"].strip().rstrip("/"),
        tenant_of({"client_id": cfg["client_id"]}),
    )
    session = requests.Session()

    def token(form: dict[str, str]) -> requests.Response:
        data = {**form, "client_id": cfg["client_id"], "client_secret": cfg["client_secret"]}
        return session.post(f"{cfg['base_url']}/identity/connect/token", data=data, timeout=60)

    def put(refresh_token: str) -> None:
        with store.lock():  # no access token: the next child must refresh
            store.write(StoredTokens(TokenSet(None, refresh_token), fp))

    def reseed() -> None:
        body = token(
            {
                "grant_type": "password",
                "username": creds["username"],
                "password": creds["password"],
                "scope": "api offline_access",
            }
        ).json()
        put(body["refresh_token"])

    reseed()
    rng = random.Random(seed)
    counts = {
        "trials": 0,
        "corrupt": 0,
        "lost_window": 0,
        "lost_other": 0,
        "finished_before_kill": 0,
        "killed_before_post": 0,
        "killed_in_flight": 0,
        "killed_after_persist": 0,
    }
    span = 0.0  # the kill window: calibrated on the machine, see _calibrate
    for trial in range(trials):
        if trial % 50 == 0:  # how long a whole refresh takes now (the machine's load varies)
            span = _calibrate(cfg, store, put) * 1.2
        before = str(_doc(store)["refresh_token"])
        pid = _refresh_child(cfg)
        time.sleep(rng.uniform(0, span))  # the kill moment, at random within the window
        finished = os.waitpid(pid, os.WNOHANG)[0] != 0
        if not finished:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        counts["trials"] += 1
        try:
            doc = _doc(store)
            current = str(doc["refresh_token"])
        except (OSError, ValueError, KeyError, TypeError):
            counts["corrupt"] += 1
            reseed()
            continue
        in_flight = doc.get("pending_refresh_sha256") == sha256(before)
        if finished:
            counts["finished_before_kill"] += 1
        elif current != before:
            counts["killed_after_persist"] += 1
        elif in_flight:
            counts["killed_in_flight"] += 1
        else:
            counts["killed_before_post"] += 1
        resp = token({"grant_type": "refresh_token", "refresh_token": current})
        if resp.status_code == 200:
            put(resp.json()["refresh_token"])
            continue
        if current == before and in_flight:
            counts["lost_window"] += 1
        else:
            counts["lost_other"] += 1
        reseed()
    Path(out).write_text(json.dumps(counts), encoding="utf-8")
    return 0


def _refresh_child(cfg: dict[str, Any]) -> int:
    """Fork a child that gets a credential through the tap's authenticator (a refresh)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            authenticator = auth.build_authenticator(cfg, config_files=[])
            authenticator(requests.Request("GET", cfg["base_url"] + ENTITY).prepare())
            code = 0
        finally:
            os._exit(code)
    return pid


def _calibrate(cfg: dict[str, Any], store: TokenStore, put: Any) -> float:
    """Seconds an unkilled refresh takes (the slowest of three), leaving the store as it was."""
    slowest = 0.0
    for _ in range(3):
        started = time.monotonic()
        pid = _refresh_child(cfg)
        os.waitpid(pid, 0)
        slowest = max(slowest, time.monotonic() - started)
        doc = _doc(store)  # drop the access token so the next child must refresh again
        put(str(doc["refresh_token"]))
    return slowest


def _doc(store: TokenStore) -> dict[str, Any]:
    doc = json.loads(store.path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise TypeError("the token store is not a JSON object")
    return doc


def _root(url: str) -> str:
    return "/".join(url.split("/")[:3])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
