#!/usr/bin/env python
"""imgsim's command line: `python manage.py help` lists every command."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imgsim_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
