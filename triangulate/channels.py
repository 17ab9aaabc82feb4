"""The channel registry: every channel, with whether it is paid and whether clicks see it.

One owner. The registry is the ``channel_registry`` var of ``dbt_project/dbt_project.yml``
(dbt needs it when it compiles: accepted channel values, one ``spend_<name>`` column per
paid channel in ``marts.mmm_weekly_input``). Everything else reads it from there at run
time: the GX suites' known channels (:func:`triangulate.quality.load_parameters`), the
MMM's default channels (:func:`triangulate.mmm.config.load_config`) and the decision
engine (:func:`paid_channels`, :func:`is_click_tracked`). The campaign -> channel rules
(``dbt_project/seeds/channel_rules.csv``) may only name registered channels (a dbt test
and ``tests/test_channels.py``).

An entry is ``{name, paid, click_tracked}``:

* ``name``: lower-case identifier (it becomes the column ``spend_<name>`` and a step of
  a journey path), never ``unknown`` (the word for a touch no rule maps);
* ``paid``: media with spend (a ``spend_<name>`` column, an MMM channel);
* ``click_tracked``: web tracking sees the channel's touches (clicks, sessions), so
  multi-touch attribution can credit it; ``False`` for offline media (TV, podcast),
  whose MTA credit says nothing about their effect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from triangulate.paths import DBT_PROJECT_DIR

REGISTRY_FILE = DBT_PROJECT_DIR / "dbt_project.yml"
"""Where the registry lives (``vars: channel_registry:``)."""
REGISTRY_VAR = "channel_registry"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELDS = ("name", "paid", "click_tracked")
_RESERVED = {"unknown"}


class ChannelRegistryError(ValueError):
    """The channel registry is malformed, or a name is not in it."""


@dataclass(frozen=True)
class Channel:
    """One registered channel."""

    name: str
    paid: bool
    click_tracked: bool


def load_channels(path: Path | None = None) -> list[Channel]:
    """Every registered channel, in registry order (default file: :data:`REGISTRY_FILE`).

    Raises :class:`ChannelRegistryError` naming the file and the offending entry.
    """
    path = Path(path or REGISTRY_FILE).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ChannelRegistryError(f"channel registry not found: {path}") from None
    return list(_load(path, stat.st_mtime_ns, stat.st_size))


def channel_names(path: Path | None = None) -> list[str]:
    """Names of every registered channel, in registry order."""
    return [c.name for c in load_channels(path)]


def paid_channels(path: Path | None = None) -> list[str]:
    """Names of the paid channels (those with spend), in registry order."""
    return [c.name for c in load_channels(path) if c.paid]


def get_channel(name: str, path: Path | None = None) -> Channel:
    """The registered channel ``name``; :class:`ChannelRegistryError` when there is none."""
    channels = load_channels(path)
    for channel in channels:
        if channel.name == name:
            return channel
    known = ", ".join(c.name for c in channels)
    raise ChannelRegistryError(
        f"unknown channel {name!r}; the channel registry "
        f"({path or REGISTRY_FILE}, vars.{REGISTRY_VAR}) has: {known}"
    )


def is_click_tracked(name: str, path: Path | None = None) -> bool:
    """Whether web tracking sees channel ``name``'s touches (so MTA can credit it).

    ``False`` for offline media (TV, podcast). Raises :class:`ChannelRegistryError` for a
    name that is not registered.
    """
    return get_channel(name, path).click_tracked


@lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int, size: int) -> tuple[Channel, ...]:
    """Parsed and checked registry; cached per file version (path, mtime, size)."""
    where = f"{path}: vars.{REGISTRY_VAR}"
    try:
        project = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ChannelRegistryError(f"{path}: not valid YAML: {exc}") from None
    entries = (project.get("vars") or {}).get(REGISTRY_VAR) if isinstance(project, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ChannelRegistryError(
            f"{where}: expected a non-empty list of {{name, paid, click_tracked}}"
        )
    channels: list[Channel] = []
    for index, entry in enumerate(entries, start=1):
        at = f"{where} entry {index} ({entry!r})"
        if not isinstance(entry, dict) or set(entry) != set(_FIELDS):
            raise ChannelRegistryError(f"{at}: expected exactly the keys {list(_FIELDS)}")
        name, paid, tracked = (entry[k] for k in _FIELDS)
        if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
            raise ChannelRegistryError(
                f"{at}: name must be a lower-case identifier ([a-z][a-z0-9_]*), not 'unknown'"
            )
        if not isinstance(paid, bool) or not isinstance(tracked, bool):
            raise ChannelRegistryError(f"{at}: paid and click_tracked must be true or false")
        if any(c.name == name for c in channels):
            raise ChannelRegistryError(f"{at}: channel {name!r} is listed twice")
        channels.append(Channel(name=name, paid=paid, click_tracked=tracked))
    return tuple(channels)
