"""One error-budget formula for the checker (per run) and the quarterly report (per quarter)."""

from __future__ import annotations

import pytest

from drills import report
from drills.checker import error_budget_s
from drills.quarters import Quarter


def test_the_budget_is_the_unavailability_the_objective_allows_over_the_quarter() -> None:
    assert error_budget_s(0.9999, Quarter(2026, 4)) == pytest.approx(0.0001 * 92 * 86400)
    assert error_budget_s(0.999, Quarter(2026, 1)) == pytest.approx(0.001 * 90 * 86400)
    assert error_budget_s(1.0, Quarter(2026, 1)) == 0


def test_the_report_budgets_with_the_same_formula() -> None:
    quarter = Quarter(2026, 4)
    budget = report._budget([], quarter)  # no runs: the default objective, 99.99%
    assert budget.objective == 0.9999
    assert budget.budget_s == error_budget_s(0.9999, quarter)
    assert (budget.used_s, budget.share, budget.runs) == (0, 0, 0)
