"""Tokens never reach the logs, whatever happens to the request that carried them."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import jwt

from tests.auth.support import access_claims, app_client, bearer, capture_logs, make_settings
from tests.conftest import TEST_JWT_SECRET


async def test_tokens_never_appear_in_logs(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET, log_level="debug")
    good = jwt.encode(access_claims("admin"), TEST_JWT_SECRET, algorithm="HS256")
    forged = jwt.encode(access_claims("admin"), "not-the-secret-" + "z" * 32, algorithm="HS256")
    expired = jwt.encode(access_claims("admin", exp=int(time.time()) - 10), TEST_JWT_SECRET, algorithm="HS256")
    refresh = jwt.encode(access_claims("admin", type="refresh"), TEST_JWT_SECRET, algorithm="HS256")
    outsider = jwt.encode(access_claims("auditor"), TEST_JWT_SECRET, algorithm="HS256")
    sent = [good, forged, expired, refresh, outsider]
    json_type = {"Content-Type": "application/json"}

    async with app_client(settings, database_url) as client:
        with capture_logs() as logs:
            statuses = []
            for token in sent:
                headers = bearer(token)
                statuses.append((await client.get("/api/customers", headers=headers)).status_code)
                statuses.append(
                    (await client.post("/api/customers", content=b"{oops", headers=headers | json_type)).status_code
                )
                statuses.append(
                    (await client.post("/api/customers", json={"first_name": ""}, headers=headers)).status_code
                )
                statuses.append((await client.get(f"/api/customers/{uuid.uuid4()}", headers=headers)).status_code)
                statuses.append((await client.get("/no/such/route", headers=headers)).status_code)
            statuses.append(
                (await client.get("/api/customers", headers={"Authorization": f"Basic {good}"})).status_code
            )
            statuses.append((await client.get("/api/customers", params={"access_token": good})).status_code)

    # Every kind of outcome was exercised: success, 4xx from auth, parsing, validation, routing.
    assert statuses[:5] == [200, 400, 422, 404, 404]
    assert set(statuses[5:]) >= {401, 403, 404}
    # The test's own HTTP client logs its request URLs (query string included) through the same
    # root logger; those lines are the test's, not the service's.
    service_lines = [r for r in logs.records() if r.get("logger") != "httpx"]
    assert service_lines
    text = "\n".join(json.dumps(r) for r in service_lines)
    access = logs.events("request")
    assert len(access) == len(statuses)
    assert "Bearer" not in text
    assert "Basic" not in text
    for token in sent:
        for part in token.split("."):
            assert part not in text
    # The user id of the good token does reach the logs: that is what they are for.
    assert jwt.decode(good, TEST_JWT_SECRET, algorithms=["HS256"])["id"] in text


async def test_secret_looking_fields_are_redacted(tmp_path: Path, database_url: str) -> None:
    import structlog

    settings = make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET)
    async with app_client(settings, database_url):
        with capture_logs() as logs:
            structlog.get_logger("crm.test").info(
                "careless", authorization="Bearer abc", token="t0k3n", password="hunter2", Secret="s3cr3t", ok=1
            )
    (record,) = logs.events("careless")
    assert record["authorization"] == record["token"] == record["password"] == record["Secret"] == "[redacted]"
    assert record["ok"] == 1
    assert "hunter2" not in logs.text
    assert "t0k3n" not in logs.text


async def test_credentials_inside_messages_and_tracebacks_are_redacted(tmp_path: Path, database_url: str) -> None:
    import structlog

    token = jwt.encode(access_claims("admin"), TEST_JWT_SECRET, algorithm="HS256")
    settings = make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET)
    async with app_client(settings, database_url):
        with capture_logs() as logs:
            log = structlog.get_logger("crm.test")
            log.info(f"upstream said: Authorization: Bearer {token}", detail=f"token was {token}")
            try:
                raise RuntimeError(f"header was bearer {token[:20]}")
            except RuntimeError:
                log.exception("crashed")
    text = logs.text
    assert token not in text
    assert token.split(".")[1] not in text
    assert token[:20] not in text
    assert "Bearer" not in text
    assert text.count("[redacted]") == 3
    (crash,) = logs.events("crashed")
    assert "RuntimeError: header was [redacted]" in crash["exception"]
