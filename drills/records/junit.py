"""A run record as a JUnit XML report, for CI: one test case per judged objective.

An objective met passes; one missed is a failure whose message gives the measured figure
against the objective; one drills could not measure (`unknown`) is an error, and so is a drill
that could not run, was aborted or crashed (a test case named `drill` carrying the reason).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from drills.checker import Overall
from drills.files import write_atomically
from drills.records.model import ObjectiveVerdict, RunRecord
from drills.verdicts import Verdict

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SECONDS = ("rto", "rpo")
_SHARES = ("availability",)


def figure(name: str, value: float) -> str:
    """`value` in the objective's own unit: seconds, a percentage, or a count."""
    base = name.split(":", 1)[0]
    if base in _SECONDS:
        return f"{value:.3f} s"
    if base in _SHARES:
        return f"{value * 100:.4f}%"
    return f"{value:g}"


def judgement(name: str, found: ObjectiveVerdict) -> str:
    """`rto: measured 41.200 s, objective <= 30.000 s` (or >= for a share to reach)."""
    if name.split(":", 1)[0] in _SHARES and found.reason:
        # Judged by the share of the quarter's error budget the downtime used, which the
        # reason states; the drill window's own percentage would read as a failure.
        return f"{name}: {found.reason} (objective >= {figure(name, found.objective)})"
    relation = ">=" if name.split(":", 1)[0] in _SHARES else "<="
    measured = (
        "not measured" if found.measured is None else f"measured {figure(name, found.measured)}"
    )
    text = f"{name}: {measured}, objective {relation} {figure(name, found.objective)}"
    return f"{text} ({found.reason})" if found.reason else text


def junit_xml(record: RunRecord, record_file: str = "") -> bytes:
    suite = ET.Element("testsuite", name=f"drills: {record.scenario.name}")
    suite.set("timestamp", record.started_at)
    suite.set("time", f"{sum(record.phases_s.values()):.3f}")
    if record.host is not None and record.host.hostname:
        suite.set("hostname", record.host.hostname)
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("run_id", record.run_id),
        ("scenario_file", record.scenario.file),
        ("verdict", record.verdict.value),
        ("record", record_file),
    ):
        ET.SubElement(properties, "property", name=key, value=value)
    classname = f"drills.{record.scenario.name}"
    for name, found in record.verdicts.items():
        case = ET.SubElement(suite, "testcase", classname=classname, name=name)
        if found.verdict is Verdict.MISSED:
            ET.SubElement(case, "failure", message=judgement(name, found), type="missed")
        elif found.verdict is Verdict.UNKNOWN:
            ET.SubElement(case, "error", message=judgement(name, found), type="unknown")
        else:
            ET.SubElement(case, "system-out").text = judgement(name, found)
    _drill_case(suite, record, classname)
    counts = {kind: len(suite.findall(f"testcase/{kind}")) for kind in ("failure", "error")}
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", "0")
    return _document(suite)


def _drill_case(suite: ET.Element, record: RunRecord, classname: str) -> None:
    """A test case for the drill itself when it could not be judged as it ran."""
    if record.verdict in (Overall.PASS, Overall.FAIL):
        return
    reason = record.error or ""
    if record.aborted:
        reason = f"aborted: {record.aborted}" + (f"; {reason}" if reason else "")
    case = ET.SubElement(suite, "testcase", classname=classname, name="drill")
    message = f"drill {record.verdict.value}: {reason or 'no reason recorded'}"
    ET.SubElement(case, "error", message=message, type=record.verdict.value)


def write_junit(record: RunRecord, path: Path, record_file: str = "") -> None:
    write_atomically(path, junit_xml(record, record_file).decode("utf-8"))


def write_junit_error(path: Path, scenario_file: Path, message: str) -> None:
    """A drill that did not run or did not finish: one test case in error, `drill MESSAGE`."""
    suite = ET.Element("testsuite", name=f"drills: {scenario_file.stem}")
    for key, value in (("tests", "1"), ("failures", "0"), ("errors", "1"), ("skipped", "0")):
        suite.set(key, value)
    case = ET.SubElement(suite, "testcase", classname=f"drills.{scenario_file.stem}", name="drill")
    ET.SubElement(case, "error", message=f"drill {message}", type="error")
    write_atomically(path, _document(suite).decode("utf-8"))


def _document(suite: ET.Element) -> bytes:
    root = ET.Element("testsuites")
    root.append(suite)
    for element in root.iter():  # XML 1.0 cannot hold most control characters, even escaped
        element.attrib = {key: _xml_safe(value) for key, value in element.attrib.items()}
        if element.text:
            element.text = _xml_safe(element.text)
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
