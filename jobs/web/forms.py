from __future__ import annotations

import json

from django import forms
from django.conf import settings

from jobs.datatypes.registry import known_data_types
from jobs.errors import InputError
from jobs.importing import Mapping
from jobs.importing.limits import loads
from jobs.models import PRIORITIES, ImportMapping
from jobs.selectors.core import submittable_projects
from jobs.web import staged_uploads

EXPIRED = "The file kept from the preview is no longer available (it is kept for an hour); choose it again."


class UploadForm(forms.Form):
    project = forms.ModelChoiceField(queryset=None, empty_label=None)
    data_type = forms.ChoiceField(choices=())
    priority = forms.IntegerField(min_value=PRIORITIES[0], max_value=PRIORITIES[-1], required=False)
    # Not required by the field: after a preview the file is kept on the server (`staged`).
    file = forms.FileField(allow_empty_file=True, required=False,
                           help_text="CSV/TSV (any common encoding), Excel .xlsx, OFX/QFX, JSON or JSON lines; "
                                     "optionally gzip-compressed (.gz).")
    staged = forms.CharField(required=False, widget=forms.HiddenInput)
    mapping_name = forms.ChoiceField(required=False, label="Saved mapping",
                                     help_text="A column mapping saved in the project.")
    mapping = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}), label="Column mapping",
                              help_text='Optional JSON, e.g. {"date": "Buchungstag", "amount": "Betrag", '
                                        '"decimal_separator": ","}. Leave empty to use the detected one.')
    save_mapping_as = forms.SlugField(required=False, label="Save the mapping as",
                                      help_text="Keep the column mapping above in the project under this name.")
    options = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text='Optional JSON object, e.g. {"default_currency": "EUR"}')

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        default = settings.ZENITH_DEFAULT_PRIORITY
        self.fields["priority"].initial = default
        self.fields["priority"].help_text = (f"Optional: 1 (lowest) to 10 (highest), {default} when left empty; "
                                             "8 and above jump the queue.")
        # Only projects the user may submit to (and so save mappings in): not those they view.
        self.fields["project"].queryset = submittable_projects(user)
        self.fields["data_type"].choices = [(name, name) for name in known_data_types()]
        saved = ImportMapping.objects.filter(project__in=self.fields["project"].queryset).order_by("project", "name")
        self.fields["mapping_name"].choices = [("", "(detect, or use the mapping below)")] + [
            (mapping.name, f"{mapping.project_id} / {mapping.name}") for mapping in saved]

    def clean_priority(self) -> int:
        priority = self.cleaned_data.get("priority")
        return settings.ZENITH_DEFAULT_PRIORITY if priority is None else priority

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload and upload.size > settings.ZENITH_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {settings.ZENITH_MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        return upload

    def clean_mapping(self) -> dict | None:
        raw = (self.cleaned_data.get("mapping") or "").strip()
        if not raw:
            return None
        try:
            value = loads(raw)  # within ZENITH_MAX_JSON_DEPTH: json.loads recurses
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"The mapping is not valid JSON: {exc.msg} at column {exc.colno}.") from None
        except InputError as exc:
            raise forms.ValidationError(f"The mapping: {exc}") from None
        try:
            Mapping.parse(value)
        except InputError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value

    def clean_options(self) -> dict:
        raw = (self.cleaned_data.get("options") or "").strip()
        if not raw:
            return {}
        try:
            value = loads(raw)  # within ZENITH_MAX_JSON_DEPTH: json.loads recurses
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Options are not valid JSON: {exc.msg} at column {exc.colno}.") from None
        except InputError as exc:
            raise forms.ValidationError(f"Options: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Options must be a JSON object, e.g. {\"default_currency\": \"EUR\"}.")
        return value

    def clean(self):
        cleaned = super().clean()
        options = dict(cleaned.get("options") or {})
        if cleaned.get("mapping"):
            options["mapping"] = cleaned["mapping"]
        if cleaned.get("mapping_name"):
            options["mapping_name"] = cleaned["mapping_name"]
        cleaned["options"] = options
        # A newly chosen file wins over the one kept from a preview.
        cleaned["staged_upload"] = None
        if not cleaned.get("file") and "file" not in self.errors:
            token = cleaned.get("staged")
            cleaned["staged_upload"] = staged_uploads.get(self.user, token) if token else None
            if cleaned["staged_upload"] is None:
                self.add_error("file", EXPIRED if token else "Choose a file to upload.")
        return cleaned


def editable_mapping(preview: dict) -> dict | None:
    """The mapping a preview read the file with, complete, to be shown for correction:
    what the user gave plus what was detected (columns, date and number conventions, CSV
    dialect, header row). Submitting it unchanged reads the file as the preview did.

    A file whose headers already are Zenith's fields (mode "canonical") gets none: a mapping
    would switch it to the mapped reading, which keeps only the known fields."""
    given = preview.get("mapping") or None
    detected = preview.get("detected") or {}
    if detected.get("mode") != "mapped":
        return given
    mapping = Mapping.parse(given).as_dict()
    columns = dict(detected.get("mapping") or {})
    columns.update(mapping.get("columns") or {})
    mapping["columns"] = columns
    if not mapping.get("date_format") and "day_first" not in mapping:
        day_first = {rule.get("day_first") for rule in detected.get("dates") or []} - {None}
        if len(day_first) == 1:
            mapping["day_first"] = day_first.pop()
    if "decimal_separator" not in mapping:
        separators = {rule.get("decimal_separator") for rule in detected.get("numbers") or []} - {None}
        if len(separators) == 1:
            mapping["decimal_separator"] = separators.pop()
    if detected.get("format") == "csv":  # a workbook's "encoding" only names the format
        for key in ("delimiter", "encoding"):
            if detected.get(key) and key not in mapping:
                mapping[key] = detected[key]
    if detected.get("header_row") and "header_row" not in mapping:
        mapping["header_row"] = detected["header_row"]
    if detected.get("format") in ("csv", "xlsx") and detected.get("header_row") is None:
        mapping["has_header"] = False
    try:
        Mapping.parse(mapping)  # what is shown must be accepted back as it is
    except InputError:
        return given
    return mapping
