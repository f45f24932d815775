"""Production safety of the settings, checked in fresh interpreter processes."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, **env):
    clean = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "CAUSEWAY_ENV", "DEBUG", "PYTEST_XDIST_WORKER"}
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", CAUSEWAY_ENV="production")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_check_deploy_is_clean_in_production_mode():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        CAUSEWAY_ENV="production",
        SECRET_KEY="x" * 20 + "-a-long-random-production-secret-0123456789",
        ALLOWED_HOSTS="causeway.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_is_off_in_production_by_default():
    result = run_manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)",
        CAUSEWAY_ENV="production",
        SECRET_KEY="y" * 60,
        ALLOWED_HOSTS="causeway.example.com",
    )
    assert result.stdout.split() == ["False", "True", "31536000"], result.stderr
