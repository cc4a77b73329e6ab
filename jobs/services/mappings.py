"""Import mappings: resolve the mapping a submission asks for, save and list named ones."""

from __future__ import annotations

from typing import IO, Any

from django.utils import timezone

from jobs import importing
from jobs.errors import SubmissionError
from jobs.models import ImportMapping, Project


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
    importing.Mapping.parse(mapping)
    saved, _ = ImportMapping.objects.update_or_create(
        project=project, name=name,
        defaults={"mapping": mapping, "description": description[:255], "updated_at": timezone.now(),
                  "created_by": user if getattr(user, "pk", None) else None},
    )
    return saved


def preview_upload(project: Project, raw: IO[bytes], name: str, data_type: str, *, fmt: str | None = None,
                   options: dict | None = None, limit: int = 20) -> dict:
    from jobs.datatypes.registry import get_data_type

    get_data_type(data_type)
    mapping = resolve_mapping(project, options)
    result = importing.preview(raw, name, data_type, fmt=fmt, mapping=mapping, limit=limit, options=options)
    result["mapping"] = mapping
    return result
