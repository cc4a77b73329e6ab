"""Benford's law tests on amounts, as Nigrini applies them in forensic accounting.

Batches count leading digits (`leading_digits`); the finalizer adds the counts up and calls
`benford_test`, so the job-wide test costs nothing per record beyond a counter. The verdict
uses the mean absolute deviation (MAD) between observed and expected proportions with
Nigrini's conformity bands (Nigrini, *Benford's Law*, 2012, table 7.1), which, unlike a
chi-square test, do not reject every large dataset for trivial deviations. Chi-square and
per-digit z statistics are reported too, for reviewers used to them.
"""

from __future__ import annotations

import math
from decimal import Decimal

FIRST_DIGIT_BANDS = ((0.006, "close conformity"), (0.012, "acceptable conformity"),
                     (0.015, "marginally acceptable conformity"))
FIRST_TWO_BANDS = ((0.0012, "close conformity"), (0.0018, "acceptable conformity"),
                   (0.0022, "marginally acceptable conformity"))
NONCONFORMITY = "nonconformity"
# Chi-square critical values at the 5 % level for 8 and 89 degrees of freedom.
CHI2_CRITICAL = {1: 15.507, 2: 112.022}


def expected(digits: int) -> dict[str, float]:
    """Benford's expected proportions of first (1-9) or first-two (10-99) digits."""
    low, high = (1, 10) if digits == 1 else (10, 100)
    return {str(d): math.log10(1 + 1 / d) for d in range(low, high)}


def leading_digits(amount: Decimal, min_amount: Decimal = Decimal(10)) -> tuple[str, str] | None:
    """The first and first-two digits of |amount|, or None when it is below `min_amount`
    (Nigrini leaves out small amounts, which are not Benford-distributed and have no
    second digit below 10)."""
    value = abs(amount)
    if value < min_amount or value == 0:
        return None
    digits = value.as_tuple().digits
    start = next(i for i, d in enumerate(digits) if d)
    first = digits[start]
    second = digits[start + 1] if start + 1 < len(digits) else 0
    return str(first), f"{first}{second}"


def benford_test(counts: dict[str, int], digits: int = 1, min_count: int = 100) -> dict:
    """Tests digit `counts` ({"1": n1, ...} or {"10": n10, ...}) against Benford's law.

    Returns n, observed and expected proportions, MAD, the conformity band, chi-square, and
    the digits whose z statistic exceeds 1.96 (most over-represented first). With fewer than
    `min_count` amounts the verdict is "insufficient data": the test means little there.
    """
    exp = expected(digits)
    n = sum(int(counts.get(d, 0)) for d in exp)
    result: dict = {"test": "first digit" if digits == 1 else "first two digits", "n": n}
    if n == 0:
        result.update(conformity="insufficient data", mad=None)
        return result
    observed = {d: int(counts.get(d, 0)) / n for d in exp}
    mad = sum(abs(observed[d] - exp[d]) for d in exp) / len(exp)
    chi2 = sum((int(counts.get(d, 0)) - n * p) ** 2 / (n * p) for d, p in exp.items())
    deviating = []
    for d, p in exp.items():
        z = (abs(observed[d] - p) - 1 / (2 * n)) / math.sqrt(p * (1 - p) / n)
        if z > 1.96:
            deviating.append({"digit": d, "observed": round(observed[d], 4), "expected": round(p, 4),
                              "z": round(z, 2), "direction": "over" if observed[d] > p else "under"})
    deviating.sort(key=lambda item: (item["direction"] != "over", -item["z"]))
    bands = FIRST_DIGIT_BANDS if digits == 1 else FIRST_TWO_BANDS
    conformity = next((label for limit, label in bands if mad <= limit), NONCONFORMITY)
    if n < min_count:
        conformity = "insufficient data"
    result.update(
        mad=round(mad, 5), conformity=conformity, chi_square=round(chi2, 2),
        chi_square_critical_5pct=CHI2_CRITICAL[digits], chi_square_rejects=chi2 > CHI2_CRITICAL[digits],
        observed={d: round(v, 4) for d, v in observed.items()}, expected={d: round(v, 4) for d, v in exp.items()},
        deviating_digits=deviating[:10],
    )
    return result
