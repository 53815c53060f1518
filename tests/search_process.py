"""A long-lived process that answers searches, like a running web server.

Reads a line per query from stdin and prints the ids it finds as JSON. Used by
test_cross_process to check that what another process ingests becomes findable.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imgsim_site.settings")

import django  # noqa: E402

django.setup()

from search.python_api import find_similar  # noqa: E402

for line in sys.stdin:
    results = find_similar(query_text=line.strip() or "photo", top_k=1000, threshold=-1)
    print(json.dumps(sorted(result["id"] for result in results)), flush=True)
