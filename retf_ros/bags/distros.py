"""Which ROS 2 distro's message definitions a bag was recorded with, and conversion to today's.

Definitions change between distros (visualization_msgs/Marker gained ``texture_resource``,
``texture``, ``uv_coordinates`` and ``mesh_file`` in Humble, and differs again between Iron and
Jazzy), and CDR bytes carry no field names: bytes recorded under one definition cannot be read
under another. So a bag is read with the definitions it was recorded with:

1. the definitions the bag carries (MCAP schemas; rosbag2 sqlite3 from Iron on), else
2. ``--distro`` when given, else the ``ros_distro`` its metadata records, else
3. a default by rosbag2 metadata version: 4 (what Foxy's rosbag2 writes) -> ``foxy``,
   anything else -> ``humble`` (the distro that wrote most definition-less bags), said in a note.

Messages whose wire format differs from the running distro's (:func:`running_distro`) are
converted with rosbags' migration: fields matched by name, fields the bag lacks at their
defaults, fields the running distro dropped left out.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

from retf_ros.errors import DataFormatError

DISTROS = ("foxy", "galactic", "humble", "iron", "jazzy", "kilted")
# The distro of the PyPI message wheels this package is tested with; a sourced ROS installation
# says its own in ROS_DISTRO.
DEFAULT_RUNNING_DISTRO = "kilted"
FOXY_METADATA_VERSION = 4  # rosbag2 metadata version Foxy writes (no message definitions)
DEFAULT_DISTRO_FOXY_METADATA = "foxy"
DEFAULT_DISTRO = "humble"  # definition-less bags with any other (or no) metadata version


def running_distro() -> str:
    """The distro whose message classes this process publishes: ROS_DISTRO when it names one
    rosbags knows, else the PyPI wheels' (kilted)."""
    distro = os.environ.get("ROS_DISTRO", "").strip().lower()
    return distro if distro in DISTROS else DEFAULT_RUNNING_DISTRO


def check_distro(distro: str | None) -> str | None:
    if distro is not None and distro not in DISTROS:
        raise DataFormatError(f"unknown ROS 2 distro {distro!r}; known: {', '.join(DISTROS)}")
    return distro


@lru_cache(maxsize=None)
def distro_typestore(distro: str):
    """rosbags' message definitions of one distro (CDR identical to that distro's rclpy)."""
    # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(getattr(Stores, f"ROS2_{check_distro(distro).upper()}"))


def default_distro(metadata_version: int | None) -> str:
    return DEFAULT_DISTRO_FOXY_METADATA if metadata_version == FOXY_METADATA_VERSION else DEFAULT_DISTRO


@dataclass
class BagDefinitions:
    """The definitions a bag is read with, and what has to be converted for the running distro."""

    origin: str                        # where the definitions come from, in words
    matches: tuple[str, ...]           # distros whose definitions equal the bag's for every type
    target: str                        # the running distro
    needs_conversion: tuple[str, ...]  # message types whose wire format differs from the target's
    unknown: tuple[str, ...]           # message types with no definition at all
    notes: list[str] = field(default_factory=list)
    source_store: object = None
    target_store: object = None
    _cache: dict = field(default_factory=dict, repr=False)

    def deserialize(self, raw: bytes, msgtype: str):
        """The message as the running distro defines it (converted when its definition differs)."""
        message = self.source_store.deserialize_cdr(raw, msgtype)
        if msgtype not in self.needs_conversion:
            return message
        # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
        from rosbags.convert.converter import migrate_message

        return migrate_message(self.source_store, self.target_store, msgtype, msgtype, self._cache, message)

    def target_raw(self, raw: bytes, msgtype: str) -> bytes:
        """CDR bytes in the running distro's definition (the same bytes when nothing differs),
        zero-padded to a multiple of 4 as DDS delivers a payload."""
        if msgtype not in self.needs_conversion:
            return raw
        converted = bytes(self.target_store.serialize_cdr(self.deserialize(raw, msgtype), msgtype))
        return converted + bytes(-len(converted) % 4)

    def describe(self) -> list[str]:
        lines = [f"message definitions: {self.origin}"
                 + (f"; same wire format as {', '.join(self.matches)}" if self.matches else "; no distro matches every type")]
        if self.needs_conversion:
            lines.append(f"converted to {self.target}'s definitions: {', '.join(self.needs_conversion)}")
        else:
            lines.append(f"no conversion needed for {self.target}")
        if self.unknown:
            lines.append(f"no definition for {', '.join(self.unknown)}: these topics cannot be read")
        return lines


def _store_from(base_distro: str, embedded: dict[str, tuple[str, str]]):
    """An empty typestore holding ``base_distro``'s definitions overridden by the bag's own."""
    # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
    from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

    store = get_typestore(Stores.EMPTY)
    types = dict(distro_typestore(base_distro).fielddefs)
    for msgtype, (encoding, text) in embedded.items():
        try:
            types.update(get_types_from_idl(text) if encoding == "ros2idl" else get_types_from_msg(text, msgtype))
        except Exception as exc:  # rosbags raises its own parser errors; the bag is what is wrong
            raise DataFormatError(f"the bag's definition of {msgtype} does not parse: {exc}") from exc
    store.register(types)
    return store


def _same_wire(a, b, msgtype: str) -> bool:
    # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
    from rosbags.convert.converter import is_same_wireformat

    if msgtype not in a.fielddefs or msgtype not in b.fielddefs:
        return False
    return is_same_wireformat(a, b, msgtype, msgtype)


def bag_definitions(msgtypes: list[str], embedded: dict[str, tuple[str, str]], metadata_version: int | None,
                    recorded_distro: str | None, requested: str | None) -> BagDefinitions:
    """Decide the definitions of a bag's ``msgtypes`` (see the module docstring).

    ``embedded``: msgtype -> (encoding ``ros2msg``/``ros2idl``, definition text) as the bag stores it.
    """
    check_distro(requested)
    notes: list[str] = []
    lacking = [t for t in msgtypes if t not in embedded]
    if not lacking:
        base, origin = requested or DEFAULT_DISTRO, "stored in the bag"
        if requested:
            notes.append(f"--distro {requested} not used: the bag carries its own message definitions")
    elif requested:
        base, origin = requested, f"{requested} (--distro)"
    elif (recorded_distro or "").lower() in DISTROS:
        base, origin = recorded_distro.lower(), f"{recorded_distro.lower()} (the bag's metadata ros_distro)"
    else:
        base = default_distro(metadata_version)
        version = "no metadata" if metadata_version is None else f"rosbag2 metadata version {metadata_version}"
        origin = f"{base} (default for a bag without definitions, {version})"
        notes.append(f"the bag stores no message definitions for {', '.join(lacking)} and no ros_distro; "
                     f"reading them as {base} ({version}); give --distro "
                     f"{'|'.join(DISTROS)} if it was recorded on another distro")
    source = _store_from(base, embedded)
    target = running_distro()
    target_store = distro_typestore(target)
    known = [t for t in msgtypes if t in source.fielddefs]
    matches = tuple(d for d in DISTROS if known and all(_same_wire(source, distro_typestore(d), t) for t in known))
    return BagDefinitions(origin=origin, matches=matches, target=target,
                          needs_conversion=tuple(t for t in known if t in target_store.fielddefs
                                                 and not _same_wire(source, target_store, t)),
                          unknown=tuple(t for t in msgtypes if t not in source.fielddefs),
                          notes=notes, source_store=source, target_store=target_store)
