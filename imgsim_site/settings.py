"""imgsim settings: everything comes from the environment, with laptop-safe defaults.

The README's "Configuration" section lists every variable read here.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from imgsim_site.databases import postgres_database
from imgsim_site.env import (
    data_dir,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# torch's OpenMP threads spin between operations by default, taking the CPU that the
# ingest decode threads need: passive waiting measured 20.5 vs 14.8 images/s on 2
# cores. OpenMP reads this once, when torch loads, which is always after settings.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# One directory holds everything a deployment must back up: SQLite, media, Chroma.
DATA_DIR = data_dir("IMGSIM_DATA_DIR", BASE_DIR / "data")
MEDIA_ROOT = DATA_DIR / "media"
CHROMA_DIR = DATA_DIR / "chroma"
# The shared, memory-mapped copy of every vector that web processes read (gallery/vector_file.py).
IMGSIM_VECTOR_DIR = Path(env_str("IMGSIM_VECTOR_DIR", str(DATA_DIR / "vectors")))

SECRET_KEY = secret_key(DATA_DIR)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "imgsim_site",
    "gallery",
    "search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "imgsim_site.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before CSRF, which reads POST bodies: who may write is settled first, with the body unread.
    "imgsim_site.middleware.BodyGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# Password guessing: after IMGSIM_LOGIN_FAILURES wrong passwords for one username from
# one address, that pair is refused (429) for IMGSIM_LOGIN_COOLOFF_MINUTES (django-axes).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "imgsim_site.auth_backend.PermissionsInOneQueryBackend",  # permissions only, in one query
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("IMGSIM_LOGIN_FAILURES", 5, minimum=1)
IMGSIM_LOGIN_COOLOFF_MINUTES = env_int("IMGSIM_LOGIN_COOLOFF_MINUTES", 15, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=IMGSIM_LOGIN_COOLOFF_MINUTES)
# A wrong password while locked must not push the lock further: one guess every 15 minutes
# would otherwise keep an account (admin) locked for ever.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# All usernames together, per address (password spraying); imgsim_site/login.py.
IMGSIM_LOGIN_FAILURES_PER_ADDRESS = env_int("IMGSIM_LOGIN_FAILURES_PER_ADDRESS", 30, minimum=1)
AXES_CLIENT_IP_CALLABLE = "imgsim_site.login.client_ip"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

ROOT_URLCONF = "imgsim_site.urls"
WSGI_APPLICATION = "imgsim_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "imgsim_site.context_processors.roles",
                "imgsim_site.context_processors.trash",
                "imgsim_site.context_processors.favourites",
            ],
        },
    },
]

# SQLite is tuned for a web app with a concurrent writer (ingest beside the server):
# WAL lets readers run during writes, IMMEDIATE takes the write lock at BEGIN so two
# writers queue on the busy timeout instead of failing mid-transaction.
_database_url = env_url("DATABASE_URL", schemes={"sqlite", "postgres", "postgresql"})
if _database_url and not _database_url.startswith("sqlite"):
    DATABASES = {"default": postgres_database(_database_url, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "imgsim.sqlite3",
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": env_int("IMGSIM_SQLITE_TIMEOUT", 20, minimum=1),
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;PRAGMA cache_size=-32000;"
                ),
            },
        }
    }
    if _database_url and _database_url not in {"sqlite://", "sqlite:///"}:
        DATABASES["default"]["NAME"] = dj_database_url.parse(_database_url)["NAME"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "gallery:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("IMGSIM_STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG or env_bool("IMGSIM_PLAIN_STATIC", False):
    # The manifest storage needs collectstatic first; runserver and tests do not.
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
WHITENOISE_USE_FINDERS = DEBUG

# Security: safe defaults on plain HTTP; IMGSIM_HTTPS=true turns on what a public
# deployment behind TLS needs (and what `check --deploy` asks for).
HTTPS = env_bool("IMGSIM_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
# Both reach beyond this app (every subdomain; browsers' built-in lists, hard to undo): opt-in.
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS and env_bool("IMGSIM_HSTS_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = HTTPS and env_bool("IMGSIM_HSTS_PRELOAD", False)
# check --deploy would ask for both; leaving them off is the decision above, not an oversight.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
IMGSIM_BEHIND_PROXY = env_bool("IMGSIM_BEHIND_PROXY", False)
if IMGSIM_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("IMGSIM_SESSION_DAYS", 14, minimum=1) * 86400

# Uploads: per-file and per-request limits, enforced with a clear 413/400.
IMGSIM_UPLOAD_MAX_BYTES = env_int("IMGSIM_UPLOAD_MAX_MB", 64, minimum=1) * 1024 * 1024
IMGSIM_UPLOAD_MAX_FILES = env_int("IMGSIM_UPLOAD_MAX_FILES", 100, minimum=1)
DATA_UPLOAD_MAX_NUMBER_FILES = IMGSIM_UPLOAD_MAX_FILES
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
# A whole request (every file of one upload together) is refused unread above this (413).
IMGSIM_REQUEST_MAX_BYTES = env_int("IMGSIM_REQUEST_MAX_MB", 1024, minimum=1) * 1024 * 1024
# Form fields and JSON bodies (files not included) are read into memory: at most this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# A selection bar posts one `ids` field per ticked photo ("all matching" posts none).
DATA_UPLOAD_MAX_NUMBER_FIELDS = 12_000
# Pillow refuses images above this many pixels before decoding them.
IMGSIM_MAX_PIXELS = env_int("IMGSIM_MAX_PIXELS", 180_000_000, minimum=1_000_000)
# A photo used as a search query is decoded only for the model: a smaller budget (JPEGs are
# reduced while decoding, so only other formats meet it) keeps a search request's memory bounded.
IMGSIM_QUERY_MAX_PIXELS = env_int("IMGSIM_QUERY_MAX_PIXELS", 32_000_000, minimum=1_000_000)

# Embedding model and vector index: pluggable backends, built once per process.
IMGSIM_MODEL = env_str("IMGSIM_MODEL", "openai/clip-vit-base-patch32")
IMGSIM_EMBEDDER = {
    "BACKEND": env_str("IMGSIM_EMBEDDER_BACKEND", "search.embeddings.TransformersEmbedder"),
    "OPTIONS": {
        "model": IMGSIM_MODEL,
        # A multilingual text encoder's image tower (known pairs need none: search.model_families).
        "image_model": env_str("IMGSIM_IMAGE_MODEL", ""),
        "precision": env_choice("IMGSIM_PRECISION", "auto", {"auto", "fp32", "bf16", "onnx", "int8"}),
        # int8 joins auto's candidates only with this and a passing `manage.py check_model`.
        "allow_int8": env_bool("IMGSIM_ALLOW_INT8", False),
        "device": env_choice("IMGSIM_DEVICE", "auto", {"auto", "cpu", "cuda", "mps"}),
        # 0: 32 images per batch on a CPU, 128 on a GPU (larger batches keep it busy).
        "batch_size": env_int("IMGSIM_BATCH_SIZE", 0, minimum=0),
        "threads": env_int("IMGSIM_TORCH_THREADS", 0),
    },
}
CHROMA_URL = env_url("CHROMA_URL", schemes={"http", "https"})
IMGSIM_INDEX = {
    "BACKEND": "search.index.ChromaIndex",
    "OPTIONS": {
        "path": str(CHROMA_DIR),
        "url": CHROMA_URL,
        # Chroma's HNSW graph (README, Configuration): how much a query explores, and how a
        # new graph is built (M and ef_construction apply from the next reindex). Search is exact
        # up to IMGSIM_EXACT_SEARCH_LIMIT, so the graph is built for speed: ef_construction 40
        # inserted 20k vectors twice as fast as 100; a million took 16.3 min against 18.7 (bench.scale).
        "hnsw": {
            "ef_search": env_int("IMGSIM_HNSW_SEARCH_EF", 256, minimum=10),
            "max_neighbors": env_int("IMGSIM_HNSW_M", 16, minimum=4),
            "ef_construction": env_int("IMGSIM_HNSW_CONSTRUCTION_EF", 40, minimum=10),
        },
    },
}

# With a worker process (`manage.py worker`), requests do no model work: uploads store
# photos and queue their embeddings, and duplicate scans are queued (search/tasks.py).
IMGSIM_WORKER = env_bool("IMGSIM_WORKER", False)
# After a commit, compute missing embeddings in the same process (off when a worker does it).
IMGSIM_EMBED_ON_COMMIT = env_bool("IMGSIM_EMBED_ON_COMMIT", not IMGSIM_WORKER)
# Without a worker, a failed index write is retried on a thread of the writing process for this long.
IMGSIM_INDEX_RETRY_SECONDS = env_int("IMGSIM_INDEX_RETRY_MINUTES", 60) * 60
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# Per process and in memory, but for "shared". "query-vectors" keeps the vectors of the query texts a process
# encoded last (search/text_queries.py): refining a search (a filter, a chip) does not run the text encoder.
# "cards" keeps grid cards by what they show (templates/gallery/index.html): after a change, a
# grid's cards come from it but for the photos that changed (~1 KB each; kept until culled).
# "shared" is files in the data dir, for every process and across restarts: the library statistics
# (gallery/stats.py), which take seconds to compute at a million photos.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache"),
        "OPTIONS": {"MAX_ENTRIES": 1000},
    },
    "cards": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "cards",
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    },
    "query-vectors": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "query-vectors",
        "TIMEOUT": None,
        "OPTIONS": {"MAX_ENTRIES": 512},
    },
}

IMGSIM_SEARCH_TOP_K = env_int("IMGSIM_SEARCH_TOP_K", 24, minimum=1)
IMGSIM_SEARCH_THRESHOLD = env_float("IMGSIM_SEARCH_THRESHOLD", -1.0, minimum=-1.0, maximum=1.0)  # -1: none
IMGSIM_DUPLICATE_THRESHOLD = env_float("IMGSIM_DUPLICATE_THRESHOLD", 0.95, minimum=0.0, maximum=1.0)
# Near-duplicates: pHash distance (of 64 bits) and the CLIP similarity that confirms it;
# crops move pHash too far, so they need the stricter CROP_CONFIRM (see search/duplicates/__init__.py).
IMGSIM_DUPLICATE_HAMMING = env_int("IMGSIM_DUPLICATE_HAMMING", 10, minimum=0)
IMGSIM_DUPLICATE_NEAR_CONFIRM = env_float("IMGSIM_DUPLICATE_NEAR_CONFIRM", 0.90, minimum=0.0, maximum=1.0)
IMGSIM_DUPLICATE_CROP_CONFIRM = env_float("IMGSIM_DUPLICATE_CROP_CONFIRM", 0.97, minimum=0.0, maximum=1.0)
# On the review page exact copies are ticked for the trash; near-duplicates and similar
# shots only from this CLIP similarity to the keeper up (search/duplicates/groups.py).
IMGSIM_DUPLICATE_PRESELECT = env_float("IMGSIM_DUPLICATE_PRESELECT", 0.98, minimum=0.0, maximum=1.01)
# A search scores its candidates exactly (never missing a neighbour) when that costs at most this many
# vectors of a pass over the shared vector file (search/query.py). At a million photos the pass takes a
# few ms more than HNSW, whose candidates held only ~0.6 of the true top 10 of text-like queries there
# (bench.scale), and web processes never load Chroma's index into memory.
IMGSIM_EXACT_SEARCH_LIMIT = env_int("IMGSIM_EXACT_SEARCH_LIMIT", 2_000_000, minimum=0)
# That pass reads every vector, in float16 from the shared file or from its int8 or int4 twin (a half
# or a quarter of the bytes; the best candidates are re-scored from the file): "auto" times the three
# once on this machine (search/paths.py), as the fastest differs between CPUs.
IMGSIM_SEARCH_PASS = env_choice("IMGSIM_SEARCH_PASS", "auto", {"auto", "fp16", "int8", "int4"})
# Above it, a search asks the ANN index for this many candidates and keeps the best by exact score:
# more finds more of the true top 10 of queries far from every photo, as text queries are (bench.scale).
IMGSIM_ANN_CANDIDATES = env_int("IMGSIM_ANN_CANDIDATES", 512, minimum=1)
# Photos per block of the scan's matrix product: a block's scores take rows x library x 2-4 bytes,
# and a stopping worker waits for the block in hand.
IMGSIM_DUPLICATE_BLOCK = env_int("IMGSIM_DUPLICATE_BLOCK", 1024, minimum=1)
# ... and fewer when one block's scores would take more memory than this (a large library).
IMGSIM_DUPLICATE_MEMORY_MB = env_int("IMGSIM_DUPLICATE_MEMORY_MB", 512, minimum=16)
# A scan that would compare more pairs than this (a full scan of ~140,000 photos) compares each photo
# only with those in its IMGSIM_DUPLICATE_PROBES nearest k-means clusters (search/similarity.py): a
# million photos in minutes instead of most of an hour, finding >= 0.99 of the pairs (bench.scale).
IMGSIM_DUPLICATE_EXACT_PAIRS = env_int("IMGSIM_DUPLICATE_EXACT_PAIRS", 10_000_000_000, minimum=0)
IMGSIM_DUPLICATE_PROBES = env_int("IMGSIM_DUPLICATE_PROBES", 3, minimum=1)
IMGSIM_TRASH_DAYS = env_int("IMGSIM_TRASH_DAYS", 30, minimum=0)
# A zip of selected originals is refused above this many MB (it is streamed, but someone waits for it).
IMGSIM_DOWNLOAD_MAX_MB = env_int("IMGSIM_DOWNLOAD_MAX_MB", 4096, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"forbidden_without_traceback": {"()": "imgsim_site.log_filters.ForbiddenWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "chromadb": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django.request": {"filters": ["forbidden_without_traceback"]},
    },
}

if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name at least one host when DEBUG is off")
