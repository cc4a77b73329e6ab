"""Import mappings: resolve the mapping a submission asks for, save and list named ones."""

from __future__ import annotations

from typing import IO, Any

from django.db import transaction
from django.utils import timezone

from jobs import importing
from jobs.errors import SubmissionError
from jobs.models import AuditAction, ImportMapping, Project
from jobs.services import audit


def resolve_mapping(project: Project, options: dict | None) -> dict | None:
    """The mapping in `options["mapping"]`, or the project's saved `options["mapping_name"]`."""
    options = options or {}
    if options.get("mapping") and options.get("mapping_name"):
        raise SubmissionError("give either options.mapping or options.mapping_name, not both")
    if options.get("mapping_name"):
        saved = ImportMapping.objects.filter(project=project, name=options["mapping_name"]).first()
        if saved is None:
            names = ", ".join(ImportMapping.objects.filter(project=project).values_list("name", flat=True))
            raise SubmissionError(f"no saved mapping named '{options['mapping_name']}' in project {project.pk}"
                                  + (f"; saved mappings: {names}" if names else ""))
        return saved.mapping
    mapping = options.get("mapping")
    if mapping is not None:
        importing.Mapping.parse(mapping)  # refuse a bad mapping before reading any file
    return mapping


def save_mapping(project: Project, name: str, mapping: dict, user: Any = None, description: str = "") -> ImportMapping:
    """Saves (or replaces) the project's mapping `name`; the audit entry keeps what it replaced."""
    if not isinstance(mapping, dict):
        # null would reach the NOT NULL column as an IntegrityError (a 500), a string or a list
        # would be stored and fail every later submission that names it.
        shown = "null" if mapping is None else type(mapping).__name__
        raise SubmissionError(f"mapping must be a JSON object, got {shown}")
    importing.Mapping.parse(mapping)
    with transaction.atomic():
        previous = (ImportMapping.objects.select_for_update().filter(project=project, name=name)
                    .values_list("mapping", flat=True).first())
        saved, created = ImportMapping.objects.update_or_create(
            project=project, name=name,
            defaults={"mapping": mapping, "description": description[:255], "updated_at": timezone.now(),
                      "created_by": user if getattr(user, "pk", None) else None},
        )
        details = {"created": created, "mapping": mapping}
        if not created:
            details["replaced"] = previous
        audit.record(actor=user, action=AuditAction.MAPPING_SAVED, project=project, target=f"mapping:{name}",
                     details=details)
    return saved


def preview_upload(project: Project, raw: IO[bytes], name: str, data_type: str, *, fmt: str | None = None,
                   options: dict | None = None, limit: int = 20) -> dict:
    from jobs.datatypes.registry import get_data_type

    get_data_type(data_type)
    mapping = resolve_mapping(project, options)
    options = dict(options or {})
    if project.base_currency:
        options.setdefault("base_currency", project.base_currency)
    result = importing.preview(raw, name, data_type, fmt=fmt, mapping=mapping, limit=limit, options=options)
    result["mapping"] = mapping
    return result


def delete_mapping(*, project: Project, name: str, actor: Any = None) -> None:
    """Deletes the project's mapping `name` (what it was goes to the audit log)."""
    with transaction.atomic():
        saved = ImportMapping.objects.select_for_update().filter(project=project, name=name).first()
        if saved is None:
            return
        saved.delete()
        audit.record(actor=actor, action=AuditAction.MAPPING_DELETED, project=project, target=f"mapping:{name}",
                     details={"mapping": saved.mapping})


def set_base_currency(project: Project, code: str, user: Any = None) -> Project:
    """Sets the project's base currency (an ISO 4217 code; "" clears it): the currency of a
    record whose file names none, stored as inferred (issue 19). Audited like a mapping,
    being a rule for reading the project's files."""
    from jobs.datatypes.fields import ISO_4217

    code = (code or "").strip().upper()
    if code and code not in ISO_4217:
        raise SubmissionError(f"base_currency must be an ISO 4217 code such as EUR, got {code!r}")
    with transaction.atomic():
        previous = (Project.objects.select_for_update().filter(pk=project.pk)
                    .values_list("base_currency", flat=True).first())
        Project.objects.filter(pk=project.pk).update(base_currency=code)
        project.base_currency = code
        audit.record(actor=user, action=AuditAction.MAPPING_SAVED, project=project, target="base_currency",
                     details={"base_currency": code, "replaced": previous or ""})
    return project
