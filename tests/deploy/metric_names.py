"""Helpers of the deploy tests: metric names in PromQL, the catalogue, the tools they need.

Prometheus rules and Grafana dashboards name metrics in free text (PromQL). These helpers
pull the doisoat names out of an expression so that the tests can check each one against
``shared/metrics.py`` (the rules) or against what running processes really expose (the
dashboards): a typo or a renamed metric would otherwise give an empty panel or an alert that
can never fire, and nobody would notice.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Set
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from shared import metrics

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
GRAFANA_DIR = REPO / "deploy" / "grafana"

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
# doisoat_… (an exposed metric) or doisoat:… (a recording rule, level:metric:operations).
_NAME = re.compile(r"(?<![A-Za-z0-9_:])doisoat[_:][A-Za-z0-9_:]*")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tool(reason: str) -> None:
    """Fail in CI (the tool must be there), skip on a developer's machine."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the CI machine must provide it)")
    pytest.skip(reason)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        missing_tool(
            "promtool not found: install the Debian package `prometheus` "
            "(apt-get install -y prometheus) to check the Prometheus configuration"
        )
    assert found is not None
    return found


def load_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        missing_tool("PyYAML not installed: pip install pyyaml to read the deploy YAML files")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def names_in_expr(expr: str) -> set[str]:
    """Every doisoat metric or recording-rule name in a PromQL expression.

    String literals are dropped first, so a label value such as ``job="doisoat-api"`` or a
    regex is never mistaken for a metric.
    """
    return set(_NAME.findall(_STRING.sub('""', expr)))


def catalogue() -> dict[str, str]:
    """The names shared/metrics.py defines, as PromQL sees them, with their type.

    Counters are queried with their ``_total`` suffix; histograms by their base name (the
    ``_bucket``/``_sum``/``_count`` series are handled by :func:`is_known`).
    """
    known: dict[str, str] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        for family in value.describe():
            name = family.name + "_total" if family.type == "counter" else family.name
            known[name] = family.type
    return known


def is_known(name: str, types: dict[str, str], extra: Set[str] = frozenset()) -> bool:
    """Whether ``name`` is a series of a metric in ``types`` (name → type) or in ``extra``."""
    if name in types or name in extra:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and types.get(name.removesuffix(suffix)) in (
            "histogram",
            "summary",
        ):
            return True
    return False


def rules() -> list[dict[str, Any]]:
    document = load_yaml(PROMETHEUS_DIR / "rules.yml")
    return [rule for group in document["groups"] for rule in group["rules"]]


def recording_rule_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}
