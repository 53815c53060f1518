"""Forms for actions on photos picked on a page (the trash's checkboxes, a photo's own buttons)."""

from django import forms
from django.core.exceptions import ValidationError

from gallery.models import Image


class PhotoIdsField(forms.Field):
    """A list of photo ids posted as repeated `ids` fields."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        values = value if isinstance(value, list | tuple) else [value] if value not in (None, "") else []
        try:
            ids = sorted({int(item) for item in values})
        except (TypeError, ValueError):
            raise ValidationError("Photo ids are whole numbers.") from None
        if any(pk <= 0 for pk in ids):
            raise ValidationError("Photo ids are positive numbers.")
        return ids


class SelectionForm(forms.Form):
    """Which photos an action applies to: the ticked ones, or all of a set (`all`)."""

    ids = PhotoIdsField(required=False)
    all = forms.BooleanField(required=False)
    # Set by the confirmation dialog (or the no-JS confirmation page) once the user agreed.
    confirmed = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if not data.get("ids") and not data.get("all"):
            raise ValidationError("Select at least one photo first.")
        return data

    def photos(self, queryset) -> list[Image]:
        """The selected photos among queryset (ids that are not in it are ignored)."""
        if self.cleaned_data["all"]:
            return list(queryset)
        return list(queryset.filter(pk__in=self.cleaned_data["ids"]))
