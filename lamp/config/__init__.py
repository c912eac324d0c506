"""lamp's configuration: EasyTPP-style YAML files with a ``lamp`` section, validated into typed settings.

- :mod:`lamp.config.loader`: reading a file (``load``, ``loads``, ``--set`` overrides, EasyTPP's keys);
- :mod:`lamp.config.schema`: the typed, frozen ``lamp`` section — the one place where a default, a choice
  list or a rule between keys is written;
- :mod:`lamp.config.names`: the names every part of lamp agrees on (tasks, backends, methods);
- :mod:`lamp.config.registry`: the proposers ``lamp.proposer.model`` accepts;
- :mod:`lamp.config.reference`: the configuration reference (docs/configuration.md) generated from the schema;
- :mod:`lamp.config.bounds`: size and depth bounds on parsed YAML.
"""
from lamp.config.loader import (ANY, DATA_FORMATS, DATA_SCHEMA, EASYTPP_SCHEMA, MAX_CONFIG_BYTES, TOP_LEVEL, Config,
                                load, load_dataset, loads, parse_overrides)
from lamp.config.registry import proposer_names, proposer_spec, register_proposer, unregister_proposer
from lamp.config.schema import LampSection
from lamp.errors import ConfigError

__all__ = ["ConfigError", "Config", "LampSection", "load", "loads", "parse_overrides", "load_dataset",
           "MAX_CONFIG_BYTES", "register_proposer", "unregister_proposer", "proposer_spec", "proposer_names",
           "ANY", "DATA_FORMATS", "DATA_SCHEMA", "EASYTPP_SCHEMA", "TOP_LEVEL"]
