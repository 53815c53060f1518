"""Forms: actions on photos picked on a page (the trash's checkboxes, a photo's own buttons), metadata edits."""

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from gallery.filters import FilterForm
from gallery.models import Album, Image, Metadata
from gallery.selectors import image_list
from gallery.services import album_create


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
        # Unreadable ids already have their own message; "select one" would only add a wrong one.
        if not data.get("ids") and not data.get("all") and "ids" not in self.errors:
            raise ValidationError("Select at least one photo first.")
        return data

    def photos(self, queryset) -> list[Image]:
        """The selected photos among queryset (ids that are not in it are ignored)."""
        if self.cleaned_data["all"]:
            return list(queryset)
        return list(queryset.filter(pk__in=self.cleaned_data["ids"]))


class TagsField(forms.Field):
    """Tags typed as "beach, family" on the page, or sent as a list by the JSON API."""

    def to_python(self, value) -> list[str]:
        if value in (None, ""):
            return []
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        names = list(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
        if any(len(name) > 64 for name in names):
            raise ValidationError("A tag is at most 64 characters.")
        return names

    def prepare_value(self, value) -> str:
        return ", ".join(value) if isinstance(value, list | tuple) else value or ""


class MetadataForm(forms.ModelForm):
    """What a person may edit about a photo: the photo page's form and PATCH /api/images/ID both use it."""

    tags = TagsField(required=False, help_text="Separate tags with commas.")

    class Meta:
        model = Metadata
        fields = ["title", "description", "category", "tags", "location", "taken_at", "latitude", "longitude"]
        labels = {"taken_at": "Date taken", "latitude": "Latitude", "longitude": "Longitude"}
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "taken_at": forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"),
            "latitude": forms.NumberInput(attrs={"step": "any", "placeholder": "e.g. 48.8584"}),
            "longitude": forms.NumberInput(attrs={"step": "any", "placeholder": "e.g. 2.2945"}),
            "tags": forms.TextInput(attrs={"list": "tag-names", "autocomplete": "off", "data-tag-input": ""}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = list(self.instance.tags.values_list("name", flat=True))

    @classmethod
    def for_change(cls, metadata: Metadata, change: dict) -> "MetadataForm":
        """A bound form for a partial change (PATCH): the fields not in change keep their values."""
        current = cls(instance=metadata)
        data = {name: current.initial.get(name) for name in cls._meta.fields}
        return cls({**{k: v for k, v in data.items() if v is not None}, **change}, instance=metadata)

    def clean(self):
        data = super().clean()
        if (data.get("latitude") is None) != (data.get("longitude") is None):
            raise ValidationError("GPS needs both latitude and longitude (or neither).")
        return data

    def changes(self) -> tuple[dict, list[str]]:
        """(fields for metadata_update, tags) from the cleaned data."""
        fields = {name: self.cleaned_data[name] for name in self._meta.fields if name != "tags"}
        return fields, self.cleaned_data["tags"]


class AlbumForm(forms.ModelForm):
    class Meta:
        model = Album
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()


class AlbumChoice(forms.Form):
    """An album picked on a page: an existing one (album_id), or, when adding, a new one named in new_album."""

    album_id = forms.ModelChoiceField(queryset=Album.objects.all(), required=False)
    new_album = forms.CharField(required=False, max_length=120, strip=True)

    def require_album(self, data: dict, *, adding: bool) -> None:
        if not data.get("album_id") and not (adding and data.get("new_album")):
            raise ValidationError("Choose an album, or name a new one.")

    def album(self, *, user) -> Album:
        """The chosen album, or the one named new_album (found ignoring case, or created)."""
        if self.cleaned_data["album_id"]:
            return self.cleaned_data["album_id"]
        name = self.cleaned_data["new_album"]
        return Album.objects.filter(name__iexact=name).first() or album_create(name=name, user=user)


class AlbumPhotosForm(AlbumChoice, SelectionForm):
    """Photos into or out of an album, from a photo's page."""

    action = forms.ChoiceField(choices=[("add", "add"), ("remove", "remove")], required=False)

    def clean(self):
        data = super().clean()
        data["action"] = data.get("action") or "add"
        self.require_album(data, adding=data["action"] == "add")
        return data


class BulkForm(AlbumChoice, SelectionForm):
    """One action on the photos picked on a grid: the ticked ones, or `all` that match the page's filters."""

    ACTIONS = {
        "tags_add": "add tags",
        "tags_remove": "remove tags",
        "category": "set category",
        "album_add": "add to album",
        "album_remove": "remove from album",
        "favourite": "favourite",
        "unfavourite": "unfavourite",
        "trash": "move to trash",
        "restore": "undo the move to the trash",
        "download": "download",
    }
    FOR_EVERYONE = {"favourite", "unfavourite", "download"}  # a viewer's own stars and copies

    action = forms.ChoiceField(choices=list(ACTIONS.items()))
    query = forms.CharField(required=False, max_length=4000)  # the grid's filters, for `all`
    album = forms.IntegerField(required=False)  # the album page the grid shows, for `all`
    tags = TagsField(required=False)
    category = forms.CharField(required=False, max_length=64, strip=True)
    undo = forms.CharField(required=False, max_length=200_000)  # signed ids of a move to the trash

    def clean(self):
        action = self.cleaned_data.get("action")
        if action == "restore":  # the undo names its photos itself (a signed token), not a selection
            return self.cleaned_data
        data = super().clean()
        if action in ("tags_add", "tags_remove") and not data.get("tags"):
            raise ValidationError("Type the tags first (separated by commas).")
        if action in ("album_add", "album_remove"):
            self.require_album(data, adding=action == "album_add")
        return data

    def photos(self, *, user) -> list[Image]:
        """The photos the action applies to: live ones among the ticked, or all matching the grid's filters."""
        if not self.cleaned_data["all"]:
            return list(Image.objects.live().filter(pk__in=self.cleaned_data["ids"]))
        params = QueryDict(self.cleaned_data["query"] or "", mutable=True)
        if self.cleaned_data["album"]:
            chosen = Album.objects.filter(pk=self.cleaned_data["album"]).first()
            if chosen is None:
                raise ValidationError("That album no longer exists.")
            params["album"] = chosen.name
        form = FilterForm(params, user=user)
        if not form.is_valid():
            raise ValidationError("The filters of this page are not valid: " + form.errors.as_text())
        return list(image_list(form=form).select_related(None))
