from __future__ import annotations

import pytest
from pydantic import ValidationError

from drills.containers.engine import EngineSpec
from drills.labs.docker_sites import Sites, SiteSpec, engine_key, removal, site_engine


def test_a_site_is_reached_where_it_is_published_unless_told_otherwise() -> None:
    assert SiteSpec.model_validate({}).reached_at() == "127.0.0.1"
    assert SiteSpec.model_validate({"publish": "10.1.0.5"}).reached_at() == "10.1.0.5"
    assert SiteSpec.model_validate({"publish": "0.0.0.0"}).reached_at() == "127.0.0.1"
    spec = SiteSpec.model_validate({"publish": "0.0.0.0", "address": "10.2.0.5"})
    assert spec.reached_at() == "10.2.0.5"


def test_only_sites_a_and_b_exist() -> None:
    assert Sites.model_validate({"b": {"engine": "dc2"}}).of("b").engine == "dc2"
    assert Sites.model_validate({}).of("a").engine is None
    with pytest.raises(ValidationError):
        Sites.model_validate({"c": {}})


def test_a_site_without_an_engine_is_on_the_scenarios() -> None:
    default = EngineSpec.model_validate({"host": "unix:///run/a.sock"})
    dc2 = EngineSpec.model_validate({"host": "tcp://10.2.0.5:2375"})
    engines = {"dc2": dc2}
    assert site_engine(SiteSpec.model_validate({}), default, engines) is default
    assert site_engine(SiteSpec.model_validate({"engine": "dc2"}), default, engines) is dc2


def test_engines_are_told_apart_by_address_or_context() -> None:
    assert engine_key(EngineSpec.model_validate({"host": "tcp://h:2375"})) == "tcp://h:2375"
    assert engine_key(EngineSpec.model_validate({"context": "dc2"})) == "dc2"


def test_a_kept_labs_removal_names_its_engine_when_there_are_two() -> None:
    text = removal("tcp://h:2375", "drills-1", "org.drills.lab", named=True)
    assert text.startswith("docker -H tcp://h:2375 rm -f $(docker -H tcp://h:2375 ps -aq")
    assert removal("dc2", "drills-1", "org.drills.lab", named=True).startswith(
        "docker --context dc2"
    )
    assert removal("x", "drills-1", "l", named=False).startswith("docker rm -f $(docker ps")


def test_a_site_is_published_on_an_ip_address_and_reached_at_an_address_or_name() -> None:
    assert SiteSpec.model_validate({"publish": "::"}).reached_at() == "::1"
    assert SiteSpec.model_validate({"address": "dc2-docker.example"}).loopback() is False
    assert SiteSpec.model_validate({}).loopback() is True
    for bad in ({"publish": "dc1-docker"}, {"address": "10.0.0.1 sslmode=disable"}):
        with pytest.raises(ValidationError):
            SiteSpec.model_validate(bad)
