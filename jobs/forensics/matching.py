"""Matching bank-statement lines to ledger transactions, in the order an accountant would:

1. **reference**: the line's reference equals a ledger transaction's (case and spacing
   ignored) and the amounts agree within the fuzzy tolerance;
2. **amount_date**: same currency, amount within `amount_tolerance` (default 0.01) and date
   within `date_window_days` (default 3: banks book on the value date);
3. **counterparty**: when stage 2 finds several candidates, or none, the counterparty names
   decide: candidates within `fuzzy_amount_pct` (default 2 %: bank charges deducted) and
   `fuzzy_date_window_days` (default 7) whose name similarity is at least
   `min_name_similarity` (default 0.6), the best ahead of the next by `ambiguity_margin`.

A line ends `matched` (one transaction), `ambiguous` (several equally good candidates, listed
best first) or `unmatched`. Transactions in `taken` (already matched to another line) are
not candidates: each ledger transaction pays one statement line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Any

from jobs.forensics.redflags import money
from jobs.forensics.similarity import dice, overlap, shingles

MATCHED, AMBIGUOUS, UNMATCHED = "matched", "ambiguous", "unmatched"
STAGE_RANK = {"reference": 0, "amount_date": 1, "counterparty": 2, "": 3}
_BANK_NOISE = re.compile(r"\b(sepa|ct|dd|payment|paymt|pmt|transfer|trf|to|from|ref|card|pos|giro|ach|wire)\b")


_REFERENCE_NOISE = re.compile(r"[\s\-_/.]")


def normalize_reference(reference: str) -> str:
    """The reference without spaces, dashes, underscores, slashes and dots, in upper case.
    Called for every candidate of a batch (tens of thousands): a reference of letters and
    digits only is upper-cased without the regular expression."""
    if not reference:
        return ""
    if reference.isalnum():
        return reference.upper()
    return _REFERENCE_NOISE.sub("", reference).upper()


def counterparty_similarity(a: str, b: str) -> float:
    """Similarity of two normalised counterparty names, tolerant of what banks do to them:
    upper case, truncation to a field width and words such as "SEPA CT" or "PAYMENT TO"
    (dropped first). The better of trigram Dice and 0.9 x containment of the shorter name."""
    a, b = _BANK_NOISE.sub(" ", a.casefold()).split(), _BANK_NOISE.sub(" ", b.casefold()).split()
    a_text, b_text = " ".join(a), " ".join(b)
    if not a_text or not b_text:
        return 0.0
    if a_text == b_text:
        return 1.0
    sa, sb = shingles(a_text), shingles(b_text)
    return max(dice(sa, sb), 0.9 * overlap(sa, sb) if min(len(a_text), len(b_text)) >= 6 else 0.0)


@dataclasses.dataclass(frozen=True)
class MatchParams:
    amount_tolerance: Decimal = Decimal("0.01")
    date_window_days: int = 3
    fuzzy_amount_pct: Decimal = Decimal("0.02")
    fuzzy_date_window_days: int = 7
    min_name_similarity: float = 0.6
    ambiguity_margin: float = 0.1
    max_candidates: int = 5
    sign: int = 1  # -1 when the statement's signs are the ledger's reversed

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> MatchParams:
        """Reads a job's options; raises ValueError naming the first bad one."""
        options = options or {}
        values: dict[str, Any] = {}
        for name in ("amount_tolerance", "fuzzy_amount_pct"):
            if name in options:
                try:
                    value = Decimal(str(options[name]))
                except Exception:
                    raise ValueError(f"options.{name} must be a number") from None
                if not value.is_finite() or value < 0:
                    raise ValueError(f"options.{name} must be a number >= 0")
                values[name] = value
        for name in ("date_window_days", "fuzzy_date_window_days", "max_candidates"):
            if name in options:
                value = options[name]
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 366:
                    raise ValueError(f"options.{name} must be a whole number from 0 to 366")
                values[name] = value
        for name in ("min_name_similarity", "ambiguity_margin"):
            if name in options:
                value = options[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise ValueError(f"options.{name} must be a number from 0 to 1")
                values[name] = float(value)
        if "invert_sign" in options:
            values["sign"] = -1 if options["invert_sign"] else 1
        return cls(**values)

    @property
    def search_days(self) -> int:
        return max(self.date_window_days, self.fuzzy_date_window_days)

    def search_range(self, amount: Decimal) -> tuple[Decimal, Decimal]:
        """The amounts a ledger row may have to be a candidate at any stage."""
        amount = amount * self.sign
        slack = max(self.amount_tolerance, abs(amount) * self.fuzzy_amount_pct)
        return amount - slack, amount + slack


@dataclasses.dataclass(frozen=True)
class Line:
    item_index: int
    line_id: str
    date: dt.date
    amount: Decimal
    currency: str
    reference: str
    counterparty_key: str


@dataclasses.dataclass(frozen=True)
class Candidate:
    id: int
    external_id: str
    date: dt.date
    amount: Decimal
    currency: str
    reference: str
    counterparty_key: str


@dataclasses.dataclass(frozen=True)
class MatchResult:
    outcome: str
    stage: str = ""
    candidate: Candidate | None = None
    confidence: float | None = None
    candidates: tuple[str, ...] = ()
    explanation: str = ""

    @property
    def rank(self) -> tuple:
        """Smaller is a stronger claim on the matched transaction."""
        return (STAGE_RANK[self.stage], -(self.confidence or 0.0))


def match_line(line: Line, candidates: Iterable[Candidate], params: MatchParams,
               taken: Iterable[int] = ()) -> MatchResult:
    """Matches one statement line against candidate ledger rows (see the module docstring)."""
    amount = line.amount * params.sign
    # A set (or a dict's keys) is used as it is: copying the transactions a job has matched so
    # far for every line made matching quadratic in the job's progress.
    held = taken if isinstance(taken, AbstractSet) else set(taken)
    pool = [c for c in candidates if c.currency == line.currency and c.id not in held]
    fuzzy_slack = max(params.amount_tolerance, abs(amount) * params.fuzzy_amount_pct)

    def days(c: Candidate) -> int:
        return abs((c.date - line.date).days)

    reference = normalize_reference(line.reference)
    if reference:
        by_reference = [c for c in pool if normalize_reference(c.reference) == reference
                        and abs(c.amount - amount) <= fuzzy_slack]
        if len(by_reference) > 1:
            exact = [c for c in by_reference if abs(c.amount - amount) <= params.amount_tolerance
                     and days(c) <= params.date_window_days]
            by_reference = exact or by_reference
        if len(by_reference) == 1:
            found = by_reference[0]
            exact_amount = abs(found.amount - amount) <= params.amount_tolerance
            return MatchResult(
                MATCHED, "reference", found, 1.0 if exact_amount else 0.9, (found.external_id,),
                f"Reference {line.reference} matches ledger transaction {found.external_id}"
                f"{'' if exact_amount else f' (amount differs by {money(found.amount - amount)})'}.")
        if len(by_reference) > 1:
            ids = tuple(c.external_id for c in sorted(by_reference, key=days)[:params.max_candidates])
            return MatchResult(AMBIGUOUS, "reference", None, None, ids,
                               f"Reference {line.reference} is on {len(by_reference)} ledger transactions "
                               "with this amount; pick one by hand.")

    close = [c for c in pool if abs(c.amount - amount) <= params.amount_tolerance
             and days(c) <= params.date_window_days]
    if len(close) == 1:
        found = close[0]
        return MatchResult(MATCHED, "amount_date", found, round(0.95 - 0.05 * days(found), 3), (found.external_id,),
                           f"Same amount and currency as ledger transaction {found.external_id}, "
                           f"{days(found)} day(s) apart, and no other transaction fits.")

    # Several fit by amount and date, or none: the counterparty decides.
    fuzzy = close or [c for c in pool if abs(c.amount - amount) <= fuzzy_slack
                      and days(c) <= params.fuzzy_date_window_days]
    scored = sorted(((counterparty_similarity(line.counterparty_key, c.counterparty_key), c) for c in fuzzy),
                    key=lambda sc: (-sc[0], days(sc[1]), sc[1].external_id))
    good = [(score, c) for score, c in scored if score >= params.min_name_similarity]
    if good and (len(good) == 1 or good[0][0] - good[1][0] >= params.ambiguity_margin):
        score, found = good[0]
        difference = found.amount - amount
        note = "" if abs(difference) <= params.amount_tolerance else f", amount differs by {money(difference)}"
        return MatchResult(
            MATCHED, "counterparty", found, round(min(0.9, score * 0.9), 3), (found.external_id,),
            f"Counterparty resembles ledger transaction {found.external_id} (similarity {score:.2f}), "
            f"{days(found)} day(s) apart{note}.")
    if len(good) > 1 or len(close) > 1:
        shortlist = good if len(good) > 1 else [(s, c) for s, c in scored]
        ids = tuple(c.external_id for _, c in shortlist[:params.max_candidates])
        return MatchResult(AMBIGUOUS, "counterparty" if len(good) > 1 else "amount_date", None, None, ids,
                           f"{len(shortlist)} ledger transactions fit equally well ({', '.join(ids)}); "
                           "the counterparty does not tell them apart.")
    return MatchResult(UNMATCHED, "", None, None, (),
                       "No ledger transaction in the same currency has this reference, or this amount within "
                       f"{params.date_window_days} day(s), or a similar counterparty and amount within "
                       f"{params.fuzzy_date_window_days} day(s).")


def resolve_conflicts(results: dict[int, MatchResult]) -> dict[int, set[int]]:
    """Lines (by item index) that matched a transaction another line holds a stronger claim
    on, keyed by the item index of the line that keeps it. Pure: the caller re-matches the
    losers with the kept transactions taken."""
    best: dict[int, int] = {}
    for index, result in sorted(results.items()):
        if result.outcome != MATCHED or result.candidate is None:
            continue
        tx = result.candidate.id
        holder = best.get(tx)
        if holder is None or result.rank < results[holder].rank:
            best[tx] = index
    losers: dict[int, set[int]] = {}
    for index, result in results.items():
        if result.outcome == MATCHED and result.candidate is not None and best[result.candidate.id] != index:
            losers.setdefault(best[result.candidate.id], set()).add(index)
    return losers


def match_lines(lines: list[Line], lookup, params: MatchParams, taken: Mapping[int, str] | None = None,
                max_rounds: int = 5) -> dict[int, MatchResult]:
    """Matches a set of lines so that no two keep the same transaction.

    `lookup(line)` returns the line's candidate transactions; `taken` maps transactions
    already matched elsewhere to the line id holding them. A transaction wanted by several
    lines stays with the strongest claim (earlier stage, higher confidence, then the earlier
    line); the others are matched again without it. A line left without a match because its
    best transaction is held elsewhere says which line holds it: on a statement, the usual
    cause is a duplicated line.
    """
    taken = dict(taken or {})
    results = {line.item_index: match_line(line, lookup(line), params, taken.keys()) for line in lines}
    by_index = {line.item_index: line for line in lines}
    blocked: dict[int, tuple[str, MatchResult]] = {}
    for _ in range(max_rounds):
        conflicts = resolve_conflicts(results)
        if not conflicts:
            break
        losers = {loser: winner for winner, group in conflicts.items() for loser in group}
        holding = set(taken) | {r.candidate.id for i, r in results.items()
                                if r.outcome == MATCHED and r.candidate is not None and i not in losers}
        for loser, winner in losers.items():
            blocked.setdefault(loser, (by_index[winner].line_id, results[loser]))
            results[loser] = match_line(by_index[loser], lookup(by_index[loser]), params, holding)
    for index, result in results.items():
        if result.outcome == MATCHED:
            continue
        if index in blocked:
            holder, lost = blocked[index]
            results[index] = explain_blocked(result, lost, holder)
        elif taken:
            probe = match_line(by_index[index], lookup(by_index[index]), params)
            if probe.outcome == MATCHED and probe.candidate is not None and probe.candidate.id in taken:
                results[index] = explain_blocked(result, probe, taken[probe.candidate.id])
    return results


def explain_blocked(result: MatchResult, lost: MatchResult, holder_line_id: str) -> MatchResult:
    """`result` with a note that its best transaction is matched to another line."""
    held = lost.candidate.external_id if lost.candidate else "?"
    note = (f" Its best match, ledger transaction {held}, is matched to statement line {holder_line_id or '?'}: "
            "possibly a duplicated statement line or a double charge.")
    return dataclasses.replace(result, explanation=(result.explanation + note).strip())
