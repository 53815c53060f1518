from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Search index"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from gallery import hooks
        from search import signals
        from search.embeddings import get_embedder
        from search.index import get_index

        signals.connect()
        hooks.set_vectorizer_factory(get_embedder)
        hooks.set_index_opener(lambda model_name: get_index().collection(model_name))
        # Every change to photos, metadata or tags ends in an index write that bumps the
        # generation (search.sync), so it also tells the gallery when its cache is stale.
        from search.sync import current_generation

        hooks.set_library_version(current_generation)
