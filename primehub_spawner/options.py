"""One validation path for every way a server is asked for: form, REST ``user_options``, restart.

``parse_user_options`` checks the shape (known keys, types, lengths); ``decide`` checks the choice
against a fresh launch context and the catalog. Both raise OptionError naming the field and the
reason, which the spawner turns into an HTTP 400.

The REST contract::

    {"group": "<group name>", "instance_type": "<name>", "image": "<name>",
     "safe_mode": false, "env": {"NAME": "value"}}

A missing ``group`` means the last used group (else the first one); a missing ``instance_type`` or
``image`` the group's default choice.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import Catalog
from .context import ENV_NAME, ENV_PRESETS_MAX, LaunchContext, env_presets_value, reserved_env
from .permissions import GroupOffer, OfferedImage, OfferedInstanceType, compatibility, resolve

KNOWN_KEYS = ("group", "instance_type", "image", "safe_mode", "env")
MAX_NAME = 253
MAX_ENV = 100
MAX_ENV_VALUE = 32 * 1024


class OptionError(ValueError):
    """A launch request that cannot be served: ``field`` and a human ``reason``."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class LaunchRequest:
    """A well-formed request; names not yet checked against anything."""

    group: str | None = None
    instance_type: str | None = None
    image: str | None = None
    safe_mode: bool = False
    env: tuple[tuple[str, str], ...] = ()

    def to_user_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"safe_mode": self.safe_mode, "env": dict(self.env)}
        for key in ("group", "instance_type", "image"):
            if getattr(self, key) is not None:
                options[key] = getattr(self, key)
        return options


def _printable(value: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def _name(options: Mapping[str, Any], key: str) -> str | None:
    if key not in options:
        return None
    value = options[key]
    if value is None:
        raise OptionError(key, "must be a string, not null (leave it out for the default)")
    if not isinstance(value, str):
        raise OptionError(key, f"must be a string, not {type(value).__name__}")
    if not value or len(value) > MAX_NAME:
        raise OptionError(key, f"must be 1 to {MAX_NAME} characters long")
    if not _printable(value):
        raise OptionError(key, "must not contain control characters")
    return value


def parse_user_options(options: Any) -> LaunchRequest:
    """Check the shape of ``user_options``; raise OptionError at the first problem."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise OptionError("user_options", "must be an object")
    unknown = sorted(str(k) for k in options if k not in KNOWN_KEYS)
    if unknown:
        raise OptionError(unknown[0], f"is not a known option (known: {', '.join(KNOWN_KEYS)})")
    safe_mode = options.get("safe_mode", False)
    if not isinstance(safe_mode, bool):
        raise OptionError("safe_mode", "must be true or false")
    env = options.get("env", {})
    if not isinstance(env, Mapping):
        raise OptionError("env", "must be an object of NAME: value")
    if len(env) > MAX_ENV:
        raise OptionError("env", f"may hold at most {MAX_ENV} variables")
    pairs = []
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise OptionError(
                f"env.{name}",
                "is not a valid variable name (letters, digits and _, not starting with a digit)",
            )
        reserved = reserved_env(name)
        if reserved is not None:
            raise OptionError(f"env.{name}", reserved)
        if not isinstance(value, str):
            raise OptionError(f"env.{name}", f"must be a string, not {type(value).__name__}")
        if len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise OptionError(
                f"env.{name}", f"must be at most {MAX_ENV_VALUE} characters without NUL"
            )
        pairs.append((name, value))
    size = len(env_presets_value(pairs))
    if size > ENV_PRESETS_MAX:
        raise OptionError(
            "env",
            f"the variables take {size:,} characters as your saved presets; at most "
            f"{ENV_PRESETS_MAX:,} are allowed",
        )
    return LaunchRequest(
        group=_name(options, "group"),
        instance_type=_name(options, "instance_type"),
        image=_name(options, "image"),
        safe_mode=safe_mode,
        env=tuple(pairs),
    )


@dataclass(frozen=True)
class LaunchChoice:
    """A request decided: the group's offer and the chosen instance type and image."""

    request: LaunchRequest
    offer: GroupOffer
    instance_type: OfferedInstanceType
    image: OfferedImage

    @property
    def group(self) -> str:
        return self.offer.group.name

    def user_options(self) -> dict[str, Any]:
        """The request with every default filled in, as stored for restarts."""
        return {
            "group": self.group,
            "instance_type": self.instance_type.instance_type.name,
            "image": self.image.image.name,
            "safe_mode": self.request.safe_mode,
            "env": dict(self.request.env),
        }


def decide(
    request: LaunchRequest, context: LaunchContext, catalog: Catalog, last_group: str | None = None
) -> LaunchChoice:
    """Check the request against the user's groups and the catalog, filling in defaults."""
    if not context.groups and request.group is None:
        raise OptionError(
            "group", "no group is configured for you to launch a server in; ask an administrator"
        )
    group_name = request.group
    if group_name is None:
        group_name = (
            last_group if last_group and context.group(last_group) else context.groups[0].name
        )
    offer = resolve(context, group_name, catalog)
    if offer is None:
        raise OptionError("group", f"you are not a member of group {group_name!r}")
    if request.instance_type is None:
        if not offer.instance_types:
            raise OptionError("instance_type", f"group {group_name!r} has no instance type")
        instance_type = offer.instance_types[0]
    else:
        found = offer.instance_type(request.instance_type)
        if found is None:
            raise OptionError(
                "instance_type",
                f"{request.instance_type!r} is not available in group {group_name!r}",
            )
        instance_type = found
    if request.image is None:
        usable = [
            o for o in offer.images if compatibility(instance_type.instance_type, o.image).allowed
        ]
        if not usable:
            raise OptionError(
                "image",
                f"no ready image in group {group_name!r} runs on instance type "
                f"{instance_type.instance_type.name!r}",
            )
        image = usable[0]
    else:
        found_image = offer.image(request.image)
        if found_image is None:
            raise OptionError(
                "image", f"{request.image!r} is not available in group {group_name!r}"
            )
        fit = compatibility(instance_type.instance_type, found_image.image)
        if not fit.allowed:
            raise OptionError("image", fit.reason)
        image = found_image
    return LaunchChoice(request=request, offer=offer, instance_type=instance_type, image=image)
