"""Django's ModelBackend, reading a person's permissions in one query instead of two.

Every full page asks whether its viewer may edit (gallery.roles.can_edit), and the
middleware asks for the permission an editor's action needs. For anyone but an
active superuser Django reads the person's own permissions and their groups' in two
queries: two round trips to a PostgreSQL server on every page. Here one query of
the permissions held either way answers, with the same result and the same per-request
cache (`_perm_cache`), which `get_user_permissions` and `get_group_permissions`
(asked separately, by nothing in imgsim) still fill in Django's own way.

It answers permissions only: it is listed before ModelBackend, which still signs
people in, so a session names ModelBackend as it did before this backend existed
(one naming a backend no longer listed is signed out). Asked after it for a
permission someone lacks, ModelBackend finds the same `_perm_cache` and reads nothing.
"""

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class PermissionsInOneQueryBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        return None

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache") and not user_obj.is_superuser:
            rows = (
                Permission.objects.filter(Q(user=user_obj) | Q(group__user=user_obj))
                .values_list("content_type__app_label", "codename")
                .order_by()
                .distinct()
            )
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
        return super().get_all_permissions(user_obj, obj)
