#!/usr/bin/env python
import os
import sys

# Commands that only read the code (never serve, never touch data) may run without the
# production secrets, e.g. `manage.py makemigrations --check` in a fresh checkout.
CODE_ONLY_COMMANDS = {"makemigrations", "help", "version"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] in CODE_ONLY_COMMANDS:
        os.environ.setdefault("CAUSEWAY_ENV", "dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
