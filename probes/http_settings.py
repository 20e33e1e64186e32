"""How the HTTP probes (`http`, `http-write`) reach a service, stated in the scenario rather than
taken from the environment: the CA that signs its certificate, a client certificate, whether
to follow redirects, and the proxy (none unless asked, whatever HTTP_PROXY says)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from pydantic import BaseModel, Field, field_validator, model_validator

NO_PROXY, ENV_PROXY = "none", "env"


class HttpSettings(BaseModel):
    ca: str | None = Field(
        None,
        description="PEM file of the CA(s) that sign the server's certificate (default: "
        "requests' bundle, certifi)",
    )
    cert: str | None = Field(None, description="client certificate (PEM), for mutual TLS")
    key: str | None = Field(None, description="the client certificate's private key, if apart")
    verify: bool = Field(True, description="check the server's certificate (false: a lab only)")
    follow_redirects: bool = Field(True, description="follow 3xx answers, as browsers do")
    proxy: str = Field(
        NO_PROXY,
        description="`none` (proxy variables ignored), `env` (HTTP_PROXY and the others, "
        "NO_PROXY too) or a proxy URL",
    )

    @field_validator("ca", "cert", "key")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_file():
            raise ValueError(f"{value!r} is not a file")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> HttpSettings:
        if self.key is not None and self.cert is None:
            raise ValueError("`key` is the client certificate's: give `cert` too")
        if self.ca is not None and not self.verify:
            raise ValueError("`ca` checks the server's certificate, which `verify: false` skips")
        return self

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str) -> str:
        if value not in (NO_PROXY, ENV_PROXY) and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r}: write none, env or an http:// or https:// proxy URL")
        return value


def tls_of(session: requests.Session) -> dict[str, Any]:
    """The session's own TLS settings, to pass with each request: with `proxy: env`, requests
    would otherwise let REQUESTS_CA_BUNDLE replace the scenario's `ca`."""
    return {"verify": session.verify, "cert": session.cert}


def session_for(settings: HttpSettings) -> requests.Session:
    """A requests session that does what `settings` say and nothing the environment says."""
    session = requests.Session()
    session.trust_env = settings.proxy == ENV_PROXY  # also REQUESTS_CA_BUNDLE and .netrc
    if settings.proxy not in (NO_PROXY, ENV_PROXY):
        session.proxies = {"http": settings.proxy, "https": settings.proxy}
    session.verify = str(Path(settings.ca).expanduser()) if settings.ca else settings.verify
    if settings.cert:
        cert = str(Path(settings.cert).expanduser())
        session.cert = (cert, str(Path(settings.key).expanduser())) if settings.key else cert
    return session
