"""Every error Zenith's services raise about a request, and the one place they become answers.

Each is a `ZenithError` carrying what a caller shows: an HTTP status, a stable `code`, a
sentence (`message`) and extra fields. The API (`jobs.api.errors`), the pages, the admin
actions and the management commands all call `describe()`, so one refusal reads the same
everywhere, and nothing a client sends surfaces as a 500 with a traceback
(docs/design.md, "Errors").

`ZenithError` is a `ValueError`: these are refusals of values a caller gave, and the code that
validates options and fields keeps catching them as such.

A record rejected by validation is a different thing (`jobs.datatypes.base.RecordRejected`):
it fails only that record, is stored with its reason, and never reaches these mappings.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig


class ZenithError(ValueError):
    """A request Zenith refuses. Subclasses set `http_status` and `code`."""

    http_status = 400
    code = "invalid"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def detail(self) -> str:
        """The sentence shown to the caller."""
        return self.message


class SubmissionError(ZenithError):
    """A submission refused as a whole."""

    code = "invalid_submission"


class NoItems(SubmissionError):
    code = "no_items"

    def __init__(self) -> None:
        super().__init__("No items provided")


class TooManyItems(SubmissionError):
    http_status = 413
    code = "too_many_items"

    def __init__(self, limit: int) -> None:
        words = "1 million" if limit == 1_000_000 else f"{limit:,}"
        super().__init__(f"Maximum {words} items per job", setting="ZENITH_MAX_ITEMS_PER_JOB", limit=limit)


class BodyTooLarge(SubmissionError):
    http_status = 413
    code = "too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit // (1024 * 1024)} MB (ZENITH_MAX_UPLOAD_BYTES).")


class AdmissionRefused(SubmissionError):
    """The system is overloaded (or the data type's breaker is open): come back later."""

    http_status = 429
    code = "overloaded"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class NoStoredTransactions(SubmissionError):
    code = "no_items"

    def __init__(self, project_id: str) -> None:
        super().__init__(f"Project '{project_id}' has no stored transactions yet: submit a ledger as data type "
                         "'transaction' first.")


class UnknownDataType(ZenithError):
    code = "unknown_data_type"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"Unknown data type '{name}'. Known data types: {', '.join(known)}.",
                         known_data_types=known)
        self.name = name
        self.known = known


class InputError(ZenithError):
    """A file (or body) that cannot be read; `line` is where, when known."""

    code = "malformed_input"

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message, line=line)
        self.line = line

    def detail(self) -> str:
        return f"The file could not be read: {self.message}"


class LimitExceeded(InputError):
    """An input over one of the readers' budgets (docs/operations.md, "Limits"): the answer
    names the limit and the setting that raises it, so an operator with a real file that large
    knows what to change."""

    http_status = 413
    code = "input_too_large"

    def __init__(self, what: str, setting: str, limit: int | float, line: int | None = None) -> None:
        shown = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
        super().__init__(f"{what}; the limit is {shown} ({setting})", line)
        self.extra.update(setting=setting, limit=limit)
        self.setting = setting
        self.limit = limit


class TooDeep(LimitExceeded):
    """JSON nested deeper than ZENITH_MAX_JSON_DEPTH: malformed for Zenith rather than large."""

    http_status = 400
    code = "input_too_deep"


class JobStateError(ZenithError):
    """The action does not fit the job's state."""

    http_status = 409
    code = "conflict"


class JobAlreadyFinished(JobStateError):
    code = "job_finished"

    def __init__(self, status: str) -> None:
        super().__init__(f"Job already {status}", status=status)
        self.status = status


class NotFound(ZenithError):
    """Unknown, or not visible to this user: the two read the same, so nobody learns what
    exists elsewhere (docs/operations.md, "Accounts and roles")."""

    http_status = 404
    code = "not_found"


class UnknownProject(SubmissionError):
    """A request body names a project that does not exist or that the caller is not a member
    of; one sentence for both."""

    code = "unknown_project"

    def __init__(self, project_id: str) -> None:
        super().__init__(f"Unknown project '{project_id}' (or you are not a member of it)")


class NotAllowed(ZenithError):
    """The caller sees the project, but their role (or their permissions) does not allow
    the action."""

    http_status = 403
    code = "not_allowed"


class MembershipConflict(ZenithError):
    """A membership change that would break a project's rules (e.g. leave it without an owner)."""

    http_status = 409
    code = "membership_conflict"


class ResultFilterError(ZenithError):
    """A query parameter with a value the results filter does not accept."""

    code = "invalid"


class NoSimilarityIndex(ZenithError):
    """The project has no finished embedding job over its stored transactions."""

    http_status = 409
    code = "no_similarity_index"


class InvalidReview(ZenithError):
    """A review of a finding with a state or note Zenith does not accept."""

    code = "invalid_review"


class ReviewConflict(ZenithError):
    """The finding was reviewed by someone else after the reviewer last saw it: nothing is
    saved, so no verdict silently replaces one its author never read."""

    http_status = 409
    code = "review_conflict"


def sentence(exc: ZenithError) -> str:
    """The sentence a command or an admin message shows for a refusal (describe's own)."""
    return exc.detail()


def describe(exc: BaseException) -> tuple[int, str, str, dict] | None:
    """(HTTP status, code, sentence, extra fields) for an error about a request; None for
    anything else (a bug or an outage, which the caller must not dress up as a 4xx)."""
    if isinstance(exc, ZenithError):
        return exc.http_status, exc.code, exc.detail(), dict(exc.extra)
    if isinstance(exc, RequestDataTooBig):
        return 413, "too_large", "The request body is too large; upload the data as a file instead.", {}
    return None
