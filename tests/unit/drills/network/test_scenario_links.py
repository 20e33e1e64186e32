"""A scenario's own links: addresses refused at validation, with the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.errors import ScenarioError
from drills.network.scenario_links import NetworkSpec
from drills.scenario import load_scenario

SCENARIO = """\
version: 1
name: own-links
network:
  links:
    db:
      client: clients
      server: primary
      listen: "{listen}"
      upstream: "{upstream}"
probes:
  reads: {{kind: tcp, address: "127.0.0.1:16432"}}
service_probe: reads
steps:
  - wait: 1s
"""


@pytest.mark.parametrize(
    ("listen", "upstream", "message"),
    [
        ("0.0.0.0:16432", "127.0.0.1:5432", "every address"),
        ("[::]:16432", "127.0.0.1:5432", "every address"),
        ("127.0.0.1:16432", "169.254.169.254:80", "metadata"),
        ("127.0.0.1:16432", "metadata.google.internal:80", "metadata"),
        ("127.0.0.1:16432", "[fe80::1]:5432", "link-local"),
    ],
)
def test_refused_addresses_are_scenario_errors(
    tmp_path: Path, listen: str, upstream: str, message: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(listen=listen, upstream=upstream))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    text = str(caught.value)
    assert message in text and f"{path}:" in text and "network.links.db" in text, text


def test_the_declared_upstreams_are_what_the_own_proxy_allows() -> None:
    spec = NetworkSpec.model_validate(
        {
            "token": "x" * 20,
            "links": {
                "db": {
                    "client": "c",
                    "server": "s",
                    "listen": "127.0.0.1:0",
                    "upstream": "10.0.0.5:5432",
                }
            },
        }
    )
    assert spec.upstreams() == [("10.0.0.5", 5432)]
