from django import forms
from django.conf import settings

from gallery.filters import FilterForm


class SearchForm(FilterForm):
    q = forms.CharField(required=False, max_length=500, label="Search")
    exclude = forms.CharField(required=False, max_length=200, label="Not")
    like = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    top_k = forms.IntegerField(
        required=False, min_value=1, max_value=200, initial=settings.IMGSIM_SEARCH_TOP_K, label="Results"
    )
    threshold = forms.FloatField(required=False, min_value=-1.0, max_value=1.0, label="Minimum similarity")
    image = forms.FileField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["threshold"].initial = settings.IMGSIM_SEARCH_THRESHOLD  # as the search applies it now

    def query_parts(self) -> tuple[str, list[str]]:
        """Split "beach -people -cars" into ("beach", ["people", "cars"]), with the Not field's terms (commas) too."""
        words, negatives = [], []
        for word in (self.cleaned_data.get("q") or "").split():
            if word.startswith("-") and len(word) > 1:
                negatives.append(word[1:])
            else:
                words.append(word)
        negatives += [term.strip() for term in (self.cleaned_data.get("exclude") or "").split(",") if term.strip()]
        return " ".join(words), negatives

    def chips(self, params) -> list[dict]:
        """A removable chip per "not" term (dropping it from the query or the Not field), then the filters'."""
        words = (self.cleaned_data.get("q") or "").split()
        excluded = [term.strip() for term in (self.cleaned_data.get("exclude") or "").split(",") if term.strip()]
        chips = []
        for term in self.query_parts()[1]:
            remaining = params.copy()
            if f"-{term}" in words:
                remaining["q"] = " ".join(word for word in words if word != f"-{term}")
            else:
                remaining["exclude"] = ", ".join(other for other in excluded if other != term)
            chips.append({"name": "not", "label": "not", "value": term, "without": remaining.urlencode()})
        return chips + super().chips(params)
