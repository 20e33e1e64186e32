"""`http-write`: POST (or PUT) a write with a unique increasing id; a 2xx answer is the
acknowledgment.

The body is the scenario's template (`body`, with {id}, {run_id} and {probe}), or by default
`{"id": SEQ, "run": RUN_ID, "probe": NAME}` (the dual-active lab's order API). After recovery
every write is looked up again, in the database (`verify_dsn` with `verify_query`, or the
lab's table `orders`) or through the service (`verify_url`: a template with {id}, or the lab's
`GET verify_url/ID?run=...&probe=...`; 200 has it, 404 has not), and the checker classifies
each one as it does SQL writes. The answer's `site` and `db` (the site that served it and the
database that committed it) are recorded: they show both sites serving, and two databases
accepting writes at once (split brain).

Outcomes: 2xx ok. Certainly not done (fail): the connection was refused, a 4xx, HAProxy's 503
when no site is up, or the service's 503 saying `"outcome": "fail"`. Anything else after the
request was sent (a timeout, a reset, 502, 504) may have been committed: unknown.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from typing import Literal

import psycopg
import requests
from pydantic import Field, field_validator, model_validator

from drills.errors import ProbeError
from drills.history import Outcome
from drills.probe import PROBES, Client, ProbeConfig, Sample, WriteProbe
from probes.http import describe_error, http_url
from probes.http_settings import HttpSettings, session_for, tls_of
from probes.pg import connect, short
from probes.pg_statements import for_psycopg, names_in


class HttpWriteConfig(HttpSettings, ProbeConfig):
    kind: Literal["http-write"]
    url: str = Field(description="where orders are POSTed, e.g. ${lab.url}/orders")
    verify_dsn: str | None = Field(
        None, description="read every write back from this database (table `orders`)"
    )
    verify_url: str | None = Field(
        None, description="or through the service: GET VERIFY_URL/ID?run=...&probe=..."
    )
    site_header: str = Field("X-Drills-Site", description="response header naming the site")
    method: Literal["POST", "PUT"] = "POST"
    body: str | None = Field(
        None,
        description="the request body, with {id}, {run_id} and {probe} where the values go "
        "(default: the lab's order, JSON)",
    )
    content_type: str = Field("application/json", description="the body's media type")
    headers: dict[str, str] = Field(default_factory=dict)
    verify_query: str | None = Field(
        None,
        description="with verify_dsn: reads this run's writes back, rows of (id, count), with "
        ":run_id and :probe (default: the lab's `orders` table)",
    )

    @field_validator("url", "verify_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _one_verification(self) -> HttpWriteConfig:
        if (self.verify_dsn is None) == (self.verify_url is None):
            raise ValueError("give exactly one of verify_dsn and verify_url")
        if self.verify_query is not None and self.verify_dsn is None:
            raise ValueError("verify_query reads through verify_dsn: give that too")
        own = "ids start again with every run"
        if self.body is not None and not {"id", "run_id"} <= held(self.body):
            raise ValueError(f"body must hold {{id}} and {{run_id}}: {own}")
        template = self.verify_url is not None and "{" in self.verify_url
        if template and not {"id", "run_id"} <= held(str(self.verify_url)):
            raise ValueError(f"a verify_url template must hold {{id}} and {{run_id}}: {own}")
        if self.verify_query is not None and "run_id" not in names_in(self.verify_query):
            raise ValueError(f"verify_query must hold :run_id: {own}")
        return self


TEMPLATE = re.compile(r"\{(id|run_id|probe)\}")
Escape = Literal["text", "url", "json"]


def held(template: str) -> set[str]:
    return set(TEMPLATE.findall(template))


def filled(template: str, values: dict[str, object], escape: Escape = "text") -> str:
    """`template` with {id}, {run_id} and {probe} replaced: URL-quoted in a URL, escaped as
    inside a JSON string in a JSON body (a probe's name may hold a quote)."""

    def one(match: re.Match[str]) -> str:
        text = str(values[match[1]])
        if escape == "url":
            return urllib.parse.quote(text, safe="")
        return json.dumps(text)[1:-1] if escape == "json" else text

    return TEMPLATE.sub(one, template)


def _certainly_not_done(answer: requests.Response) -> bool:
    if 400 <= answer.status_code < 500:
        return True
    if answer.status_code != 503:
        return False
    try:
        body = answer.json()
    except ValueError:
        return "No server is available" in answer.text  # HAProxy: nothing was forwarded
    return isinstance(body, dict) and body.get("outcome") == "fail"


class HttpWriteClient(Client):
    def __init__(self, probe: HttpWriteProbe) -> None:
        self.probe = probe
        self.session = session_for(probe.cfg)

    def sample(self, seq: int) -> Sample:
        cfg = self.probe.cfg
        self.probe.issued(seq)
        try:
            answer = self.session.request(
                cfg.method,
                cfg.url,
                data=self.probe.body(seq),
                headers={"Content-Type": cfg.content_type, **cfg.headers},
                timeout=cfg.timeout,
                allow_redirects=cfg.follow_redirects,
                **tls_of(self.session),
            )
        except requests.RequestException as exc:
            self.session.close()
            self.session = session_for(cfg)
            refused = isinstance(exc, requests.ConnectTimeout) or (
                isinstance(exc, requests.ConnectionError) and "NewConnectionError" in str(exc)
            )
            return Sample(Outcome.FAIL if refused else Outcome.UNKNOWN, describe_error(exc))
        tags: dict[str, str] = {}
        if answer.headers.get(cfg.site_header):
            tags["site"] = answer.headers[cfg.site_header]
        if 200 <= answer.status_code < 300:
            try:
                data = answer.json()
                if isinstance(data, dict) and data.get("db"):
                    tags["db"] = str(data["db"])
                if isinstance(data, dict) and data.get("timeline") is not None:
                    tags["timeline"] = str(data["timeline"])
            except ValueError:
                pass
            return Sample(Outcome.OK, "", tags=tags or None)
        outcome = Outcome.FAIL if _certainly_not_done(answer) else Outcome.UNKNOWN
        detail = f"HTTP {answer.status_code}: {' '.join(answer.text.split())[:80]}"
        return Sample(outcome, detail, tags=tags or None)

    def close(self) -> None:
        self.session.close()


@PROBES.register("http-write")
class HttpWriteProbe(WriteProbe):
    Config = HttpWriteConfig

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._issued: set[int] = set()

    @property
    def cfg(self) -> HttpWriteConfig:
        assert isinstance(self.config, HttpWriteConfig)
        return self.config

    def values(self, seq: int) -> dict[str, object]:
        return {"id": seq, "run_id": self.run_id, "probe": self.name}

    def body(self, seq: int) -> bytes:
        if self.cfg.body is None:
            return json.dumps({"id": seq, "run": self.run_id, "probe": self.name}).encode()
        escape: Escape = "json" if "json" in self.cfg.content_type.lower() else "text"
        return filled(self.cfg.body, self.values(seq), escape).encode()

    def issued(self, seq: int) -> None:
        with self._lock:
            self._issued.add(seq)

    def client(self) -> Client:
        return HttpWriteClient(self)

    def final_read(self) -> dict[int, int]:
        if self.cfg.verify_dsn is not None:
            return self._read_database(self.cfg.verify_dsn)
        return self._read_service(str(self.cfg.verify_url))

    def _read_database(self, dsn: str) -> dict[int, int]:
        query = self.cfg.verify_query or (
            "SELECT id, count(*) FROM orders WHERE run_id = :run_id AND probe = :probe GROUP BY id"
        )
        try:
            with connect(dsn, max(self.cfg.timeout, 5.0)) as conn:
                rows = conn.execute(for_psycopg(query), self.values(0)).fetchall()
        except psycopg.errors.UndefinedTable:
            return {}  # no order was ever committed
        except psycopg.Error as exc:
            raise ProbeError(f"final read of {self.name} failed: {short(exc)}") from exc
        return {int(str(row[0])): int(str(row[1])) for row in rows}

    def _read_service(self, base: str) -> dict[int, int]:
        found: dict[int, int] = {}
        with self._lock:
            issued = sorted(self._issued)
        with session_for(self.cfg) as session:
            for seq in issued:
                if self._look_up(session, *self._lookup_url(base, seq)):
                    found[seq] = 1
        return found

    def _lookup_url(self, base: str, seq: int) -> tuple[str, dict[str, str] | None]:
        """A template's URL for write `seq`, or the lab's: BASE/ID?run=...&probe=..."""
        if "{id}" in base:
            return filled(base, self.values(seq), "url"), None
        return f"{base.rstrip('/')}/{seq}", {"run": self.run_id, "probe": self.name}

    def _look_up(
        self, session: requests.Session, url: str, params: dict[str, str] | None, attempts: int = 3
    ) -> bool:
        """Whether the service has the write (200; 404: it has not); a busy or unreachable
        service is asked again (a few times, briefly) before the final read is given up."""
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.2 * attempt)
            try:
                answer = session.get(
                    url,
                    params=params,
                    timeout=max(self.cfg.timeout, 5.0),
                    allow_redirects=self.cfg.follow_redirects,
                    **tls_of(session),
                )
            except requests.RequestException as exc:
                problem = describe_error(exc)
                continue
            if answer.status_code in (200, 404):
                return answer.status_code == 200
            problem = f"HTTP {answer.status_code}"
        raise ProbeError(f"final read of {self.name}: {url} failed {attempts} times: {problem}")
