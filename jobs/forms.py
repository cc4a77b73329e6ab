from __future__ import annotations

import json

from django import forms

from .datatypes.registry import known_data_types
from .importing import InputError, Mapping
from .models import ImportMapping
from .selectors import visible_projects


class UploadForm(forms.Form):
    project = forms.ModelChoiceField(queryset=None, empty_label=None)
    data_type = forms.ChoiceField(choices=())
    priority = forms.IntegerField(min_value=1, max_value=10, initial=5,
                                  help_text="1 (lowest) to 10 (highest); 8 and above jump the queue.")
    file = forms.FileField(allow_empty_file=True,
                           help_text="CSV/TSV (any common encoding), Excel .xlsx, OFX/QFX, JSON or JSON lines; "
                                     "optionally gzip-compressed (.gz).")
    mapping_name = forms.ChoiceField(required=False, label="Saved mapping",
                                     help_text="A column mapping saved in the project.")
    mapping = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Column mapping",
                              help_text='Optional JSON, e.g. {"date": "Buchungstag", "amount": "Betrag", '
                                        '"decimal_separator": ","}. Leave empty to use the detected one.')
    save_mapping_as = forms.SlugField(required=False, label="Save the mapping as",
                                      help_text="Keep the column mapping above in the project under this name.")
    options = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text='Optional JSON object, e.g. {"default_currency": "EUR"}')

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = visible_projects(user)
        self.fields["data_type"].choices = [(name, name) for name in known_data_types()]
        saved = ImportMapping.objects.filter(project__in=self.fields["project"].queryset).order_by("project", "name")
        self.fields["mapping_name"].choices = [("", "(detect, or use the mapping below)")] + [
            (mapping.name, f"{mapping.project_id} / {mapping.name}") for mapping in saved]

    def clean_mapping(self) -> dict | None:
        raw = (self.cleaned_data.get("mapping") or "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"The mapping is not valid JSON: {exc.msg} at column {exc.colno}.") from None
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
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Options are not valid JSON: {exc.msg} at column {exc.colno}.") from None
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
        return cleaned
