from __future__ import annotations

import json

from django import forms

from .datatypes.registry import known_data_types
from .selectors import visible_projects


class UploadForm(forms.Form):
    project = forms.ModelChoiceField(queryset=None, empty_label=None)
    data_type = forms.ChoiceField(choices=())
    priority = forms.IntegerField(min_value=1, max_value=10, initial=5,
                                  help_text="1 (lowest) to 10 (highest); 8 and above jump the queue.")
    file = forms.FileField(allow_empty_file=True,
                           help_text="CSV, JSON array or JSON lines, optionally gzip-compressed (.gz).")
    options = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text='Optional JSON object, e.g. {"default_currency": "EUR", "day_first": true}')

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = visible_projects(user)
        self.fields["data_type"].choices = [(name, name) for name in known_data_types()]

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
