from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Search index"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.core import checks

        from gallery import hooks
        from search.checks import backends

        checks.register(backends, "imgsim")
        from search import signals
        from search.embeddings import get_embedder
        from search.index import get_index

        signals.connect()
        hooks.set_vectorizer_factory(get_embedder)
        hooks.set_index_opener(lambda model_name: get_index().collection(model_name))
        from search.health import library_stats, library_stats_version, not_searchable

        hooks.set_stats_contributor(library_stats, library_stats_version)
        hooks.set_not_searchable(not_searchable)
        from search.selectors import result_ids

        hooks.set_result_ids(result_ids)
