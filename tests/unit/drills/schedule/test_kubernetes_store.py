"""`drills schedule --kubernetes --store-secret --service-account`: CronJobs whose pods write
to the results store, its URL and password from a Secret, the password as a file."""

from __future__ import annotations

import pytest
import yaml

from drills.cli import main
from drills.errors import EXIT_OK
from tests.paths import REPO

SHIPPED = REPO / "scenarios" / "schedule.yaml"


def jobs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[list[dict[str, object]], str]:
    code = main(["schedule", "--kubernetes", "--schedule", str(SHIPPED), *argv])
    out, err = capsys.readouterr()
    assert (code, err) == (EXIT_OK, "")
    return [doc for doc in yaml.safe_load_all(out) if doc], out


def test_cronjobs_write_to_the_store_of_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    found, out = jobs(capsys, "--store-secret", "drills-store", "--service-account", "drills")
    assert len(found) == 9
    assert "Records go to the results store of Secret drills-store" in out
    assert "spooled in the pod and lost with it: give --state-claim" in out
    for job in found:
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[index]
        assert pod["serviceAccountName"] == "drills"
        (container,) = pod["containers"]
        assert container["env"] == [
            {
                "name": "DRILLS_STORE",
                "valueFrom": {"secretKeyRef": {"name": "drills-store", "key": "url"}},
            },
            {
                "name": "DRILLS_STORE_PASSWORD_FILE",
                "value": "/var/run/secrets/drills-store/password",
            },
        ]
        assert container["volumeMounts"] == [
            {"name": "store", "mountPath": "/var/run/secrets/drills-store", "readOnly": True}
        ]
        (volume,) = pod["volumes"]
        assert volume["secret"] == {
            "secretName": "drills-store",
            "items": [{"key": "password", "path": "password"}],
            "defaultMode": 0o400,
        }


def test_without_a_store_the_pods_keep_records_themselves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found, out = jobs(capsys)
    assert "mount a persistent volume on reports/" in out and "--store-secret" in out
    pod = found[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[index]
    assert "volumes" not in pod and "serviceAccountName" not in pod
    assert "env" not in pod["containers"][0]


def test_a_claim_keeps_the_spool_beyond_the_pod(capsys: pytest.CaptureFixture[str]) -> None:
    found, out = jobs(capsys, "--store-secret", "drills-store", "--state-claim", "drills-state")
    assert "spooled on claim drills-state until the next drill uploads it" in out
    pod = found[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[index]
    (container,) = pod["containers"]
    assert {"name": "DRILLS_STATE_DIR", "value": "/var/lib/drills"} in container["env"]
    assert {"name": "state", "mountPath": "/var/lib/drills"} in container["volumeMounts"]
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "drills-state"}} in pod[
        "volumes"
    ]
