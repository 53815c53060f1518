"""The gallery's filter sidebar: one form, read from the URL, shared by gallery and search."""

from datetime import datetime, time, timezone as dt_timezone

from django import forms
from django.db.models import Q

FORMATS = [("", "any format"), ("JPEG", "JPEG"), ("PNG", "PNG"), ("WEBP", "WebP"), ("GIF", "GIF"),
           ("TIFF", "TIFF"), ("BMP", "BMP"), ("HEIF", "HEIC")]
SORTS = [("newest", "newest added"), ("taken", "date taken")]


class FilterForm(forms.Form):
    category = forms.CharField(required=False, max_length=64)
    tag = forms.CharField(required=False, max_length=200, help_text="comma-separated; any of them")
    camera = forms.CharField(required=False, max_length=64)
    year = forms.IntegerField(required=False, min_value=1900, max_value=2100)
    taken_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    taken_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    has_gps = forms.NullBooleanField(required=False, widget=forms.Select(choices=[("", "any"), ("true", "with GPS"), ("false", "without GPS")]))
    format = forms.ChoiceField(required=False, choices=FORMATS)
    min_width = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    sort = forms.ChoiceField(required=False, choices=SORTS)

    FILTER_FIELDS = ("category", "tag", "camera", "year", "taken_from", "taken_to", "has_gps", "format", "min_width")

    def tags(self) -> list[str]:
        raw = self.cleaned_data.get("tag") or ""
        return sorted({t.strip().lower() for t in raw.split(",") if t.strip()})

    def active(self) -> list[tuple[str, str, str]]:
        """Return (field, label, value) for each filter in use, for the removable chips."""
        chips = []
        for name in self.FILTER_FIELDS:
            value = self.cleaned_data.get(name)
            if value not in (None, ""):
                label = {True: "with GPS", False: "without GPS"}[value] if name == "has_gps" else str(value)
                chips.append((name, self.fields[name].label or name.replace("_", " "), label))
        return chips

    def to_q(self) -> Q:
        data = self.cleaned_data
        q = Q()
        if data.get("category"):
            q &= Q(metadata__category__iexact=data["category"])
        if self.tags():
            q &= Q(metadata__tags__name__in=self.tags())
        if data.get("camera"):
            q &= Q(metadata__camera_model__icontains=data["camera"]) | Q(metadata__camera_make__iexact=data["camera"])
        if data.get("year"):
            q &= Q(metadata__taken_at__gte=datetime(data["year"], 1, 1, tzinfo=dt_timezone.utc),
                   metadata__taken_at__lt=datetime(data["year"] + 1, 1, 1, tzinfo=dt_timezone.utc))
        if data.get("taken_from"):
            q &= Q(metadata__taken_at__gte=datetime.combine(data["taken_from"], time.min, dt_timezone.utc))
        if data.get("taken_to"):
            q &= Q(metadata__taken_at__lte=datetime.combine(data["taken_to"], time.max, dt_timezone.utc))
        if data.get("has_gps") is not None:
            q &= Q(metadata__latitude__isnull=not data["has_gps"])
        if data.get("format"):
            q &= Q(format=data["format"])
        if data.get("min_width"):
            q &= Q(width__gte=data["min_width"])
        return q

    def to_where(self) -> dict | None:
        """The same filter in the search API's `where` syntax, for combining with a query."""
        data = self.cleaned_data
        parts = []
        if data.get("category"):
            parts.append({"category": data["category"]})
        if self.tags():
            parts.append({"tags": {"$in": self.tags()}})
        if data.get("camera"):
            parts.append({"$or": [{"camera_model": data["camera"]}, {"camera_make": data["camera"]}]})
        if data.get("year"):
            parts.append({"year": data["year"]})
        if data.get("taken_from"):
            parts.append({"taken_ts": {"$gte": int(datetime.combine(data["taken_from"], time.min, dt_timezone.utc).timestamp())}})
        if data.get("taken_to"):
            parts.append({"taken_ts": {"$lte": int(datetime.combine(data["taken_to"], time.max, dt_timezone.utc).timestamp())}})
        if data.get("has_gps") is not None:
            parts.append({"has_gps": data["has_gps"]})
        if data.get("format"):
            parts.append({"format": data["format"]})
        if data.get("min_width"):
            parts.append({"width": {"$gte": data["min_width"]}})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}
