"""Configuration: config.json (every site), projects.yml and the secret files, validated at load.

``load_config(path, site) -> SiteConfig`` is the one entry point: it reads config.json, merges
the site's SITES entry, and builds every typed section (receiver, logging, arrival, tracker,
retention, heartbeat, metrics, web, sending, destinations), validating the local tracker's
projects.yml on the way. A problem anywhere raises ConfigError, one line
``file: key: problem``, so `fiona check-config` refuses exactly what the programs would.

Modules: site.py (SiteConfig, load_config, start-up checks), sections.py (the typed
sections), destinations.py (pluggable destination types), reader.py (typed access to a
parsed mapping, for sections and destination types), secrets.py (secret files, mode 0600),
errors.py (ConfigError).
"""

from fionagw.config.destinations import (
    DEFAULT_DESTINATION,
    DestinationParser,
    DestinationSettings,
    destination_types,
    register_destination_type,
)
from fionagw.config.errors import ConfigError
from fionagw.config.reader import SectionReader, read_json
from fionagw.config.secrets import (
    SecretFileMissing,
    SecretsError,
    load_secrets,
    parse_secrets,
    read_secret_file,
    read_secret_line,
)
from fionagw.config.sections import (
    ArrivalSettings,
    HeartbeatSettings,
    LoggingSettings,
    MetricsSettings,
    ReceiverSettings,
    RetentionSettings,
    SendingSettings,
    TrackerSettings,
    WebSettings,
)
from fionagw.config.site import (
    DEFAULT_CONFIG,
    SiteConfig,
    check_datadir,
    check_port_free,
    check_user,
    config_path,
    load_config,
    receiver_enabled,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_DESTINATION",
    "ArrivalSettings",
    "ConfigError",
    "DestinationParser",
    "DestinationSettings",
    "HeartbeatSettings",
    "LoggingSettings",
    "MetricsSettings",
    "ReceiverSettings",
    "RetentionSettings",
    "SecretFileMissing",
    "SecretsError",
    "SectionReader",
    "SendingSettings",
    "SiteConfig",
    "TrackerSettings",
    "WebSettings",
    "check_datadir",
    "check_port_free",
    "check_user",
    "config_path",
    "destination_types",
    "load_config",
    "load_secrets",
    "parse_secrets",
    "read_json",
    "read_secret_file",
    "read_secret_line",
    "receiver_enabled",
    "register_destination_type",
]
