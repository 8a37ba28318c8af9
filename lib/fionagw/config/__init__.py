"""Configuration: config.json (every site), projects.yml and the secret files, validated at load."""

from fionagw.config.site import *  # noqa: F403 - the names of the former config.py
from fionagw.config.site import _Reader  # noqa: F401 - until its users move to the public reader
