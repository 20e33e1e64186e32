"""`http`: one request per sample; ok when the status is expected and the body matches.

The site that served a request (response header `site_header`, default `X-Drills-Site`) is
recorded with the sample, so a record shows which sites carried the traffic.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import requests
from pydantic import BeforeValidator, Field, field_validator

from drills.history import Outcome
from drills.probe import PROBES, Client, LoopClient, Probe, ProbeConfig, Sample
from probes.http_settings import HttpSettings, session_for, tls_of


def http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


def _codes(value: Any) -> Any:
    return [value] if isinstance(value, int) else value


class HttpConfig(HttpSettings, ProbeConfig):
    kind: Literal["http"]
    url: str = Field(description="http:// or https:// URL")
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE"] = "GET"
    expect: Annotated[list[int], BeforeValidator(_codes)] = Field(
        default_factory=lambda: [200], description="status codes that count as ok"
    )
    body: str | None = Field(None, description="regular expression the body must contain")
    headers: dict[str, str] = Field(default_factory=dict)
    site_header: str = Field("X-Drills-Site", description="response header naming the site")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("body")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"body is not a regular expression: {exc}") from None
        return value


def site_tags(answer: requests.Response, header: str) -> dict[str, str] | None:
    site = answer.headers.get(header)
    return {"site": site} if site else None


def describe_error(exc: requests.RequestException) -> str:
    text = " ".join(str(exc).split())
    reason = re.search(r"(\[Errno \d+\] [^')\"]+|Read timed out|timed out)", text)
    return f"{type(exc).__name__}: {reason.group(1) if reason else text[:120]}"


class HttpClient(Client):
    def __init__(self, config: HttpConfig) -> None:
        self.config = config
        self.session = session_for(config)
        self.pattern = re.compile(config.body) if config.body else None

    def sample(self, seq: int) -> Sample:
        cfg = self.config
        try:
            answer = self.session.request(
                cfg.method,
                cfg.url,
                headers=cfg.headers,
                timeout=cfg.timeout,
                allow_redirects=cfg.follow_redirects,
                **tls_of(self.session),
            )
        except requests.RequestException as exc:
            self.session.close()
            self.session = session_for(cfg)
            return Sample(Outcome.FAIL, describe_error(exc))
        tags = site_tags(answer, cfg.site_header)
        if answer.status_code not in cfg.expect:
            return Sample(Outcome.FAIL, f"HTTP {answer.status_code}: {answer.text[:80]}", tags=tags)
        if self.pattern is not None and not self.pattern.search(answer.text):
            return Sample(Outcome.FAIL, f"body does not match {cfg.body!r}", tags=tags)
        return Sample(Outcome.OK, "", tags=tags)

    def close(self) -> None:
        self.session.close()


@PROBES.register("http")
class HttpProbe(Probe):
    Config = HttpConfig

    def client(self) -> Client:
        assert isinstance(self.config, HttpConfig)
        return HttpClient(self.config)

    def loop_client(self) -> LoopClient | None:
        from probes.http_loop import http_loop_client  # it builds on this module's config

        assert isinstance(self.config, HttpConfig)
        return http_loop_client(self.config)
