"""The Server Options form: what each of the user's groups offers, rendered with autoescaping, and
its submission read back into the REST shape of ``user_options`` (validated like any other)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import jinja2

from ._data import TEMPLATES_DIR
from .catalog import Catalog
from .context import GroupContext, LaunchContext
from .permissions import GroupOffer, compatibility, resolve
from .quota import GroupUsage, Usage, exceeded

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def memory_text(value: Decimal | int) -> str:
    gigabytes = Decimal(value) / Decimal(10**9)
    return f"{gigabytes:.3g} GB"


def limit_text(value: Any) -> str:
    return "∞" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


_ENVIRONMENT.globals.update(
    memory=memory_text,
    limit=limit_text,
    memory_limit=lambda v: "∞" if v is None else memory_text(v),
)
_ENVIRONMENT.filters["format_number"] = lambda v: f"{Decimal(v):g}"


@dataclass(frozen=True)
class Presets:
    """Choices asked for before the form is shown (e.g. from a launch link)."""

    group: str | None = None
    instance_type: str | None = None
    image: str | None = None
    autolaunch: bool = False


class LaunchPresets:
    """Presets asked for by a link, per user and server, shown until that server's next launch.

    One entry per user (her latest link wins), so what the hub keeps is bounded by its users and
    nothing is stored on a server that does not exist yet (a link must not create one).
    """

    def __init__(self) -> None:
        self._by_user: dict[str, tuple[str, Presets]] = {}

    def put(self, user: str, server: str, presets: Presets) -> None:
        self._by_user[user] = (server, presets)

    def get(self, user: str, server: str) -> Presets:
        stored = self._by_user.get(user)
        return stored[1] if stored is not None and stored[0] == server else Presets()

    def discard(self, user: str, server: str) -> None:
        stored = self._by_user.get(user)
        if stored is not None and stored[0] == server:
            del self._by_user[user]


def _preselect(
    offer: GroupOffer,
    usage: GroupUsage,
    wanted_type: str | None,
    wanted_image: str | None,
    notices: list[str],
) -> tuple[dict[str, str], str | None, str | None]:
    over: dict[str, str] = {}
    for item in offer.instance_types:
        need = Usage.of(item.instance_type)
        problem = exceeded(offer.group.user_quota, usage.user, need) or exceeded(
            offer.group.group_quota, usage.group, need
        )
        if problem:
            over[item.instance_type.name] = f"Over quota — {problem}"

    def wanted_or_first(names: list[str], wanted: str | None, what: str) -> str | None:
        if wanted in names:
            return wanted
        if wanted:
            notices.append(
                f"{what} {wanted!r} is not available in {offer.group.display_name}; "
                "a default is selected for you."
            )
        return names[0] if names else None

    allowed = [i for i in offer.instance_types if i.instance_type.name not in over]
    instance_type = wanted_or_first(
        [i.instance_type.name for i in allowed], wanted_type, "Instance type"
    )
    chosen_type = next((i for i in allowed if i.instance_type.name == instance_type), None)
    images = [
        i.image.name
        for i in offer.images
        if chosen_type is None or compatibility(chosen_type.instance_type, i.image).allowed
    ]
    return over, instance_type, wanted_or_first(images, wanted_image, "Image")


def _group_values(
    offer: GroupOffer, usage: GroupUsage, presets: Presets, notices: list[str]
) -> dict[str, Any]:
    """What the group's part of the form shows: quota greying, preselections, usage."""
    name = offer.group.name
    over, instance_type, image = _preselect(
        offer, usage, presets.instance_type, presets.image, notices
    )
    return {
        "offer": offer,
        "over_quota": {name: over},
        "preset_instance_type": {name: instance_type},
        "preset_image": {name: image},
        "usage": {name: usage},
    }


def render(
    context: LaunchContext,
    catalog: Catalog,
    usage_of: Callable[[GroupContext], GroupUsage],
    presets: Presets = Presets(),
    last_group: str | None = None,
    for_user: str | None = None,
    group_url: str = "",
    groups_url: str = "",
    refresh_seconds: int = 0,
) -> str:
    """The form's HTML; ``usage_of(group)`` reports what the user and the group use now (by the
    group's quota label, ``GroupContext.key``).

    Only the selected group's part is rendered: the others are fetched from ``group_url`` (see
    ``render_group``) when the user switches, so the page stays small however many groups and
    resources there are. With ``refresh_seconds``, the open form updates its quota table (and
    which instance types fit) that often from ``groups_url`` (``groups_api``)."""
    groups = list(context.groups)
    names = [g.name for g in groups]
    notices: list[str] = []
    selected = names[0] if names else ""
    if last_group in names:
        selected = last_group
    if presets.group:
        if presets.group in names:
            selected = presets.group
        else:
            notices.append(
                f"Group {presets.group!r} is not available to you; another group is selected."
            )
    offer = resolve(context, selected, catalog) if selected else None
    values: dict[str, Any] = {"offer": None}
    if offer is not None:
        values = _group_values(offer, usage_of(offer.group), presets, notices)
    return _ENVIRONMENT.get_template("primehub_options.html").render(
        groups=groups,
        selected=selected,
        notices=notices,
        envs=list(context.user.envs),
        autolaunch=presets.autolaunch and bool(groups),
        for_user=for_user,
        group_url=group_url,
        groups_url=groups_url,
        refresh_seconds=refresh_seconds,
        **values,
    )


def render_group(
    context: LaunchContext,
    catalog: Catalog,
    usage_of: Callable[[GroupContext], GroupUsage],
    group: str,
) -> str | None:
    """One group's part of the form, with its defaults preselected; None if not the user's group."""
    offer = resolve(context, group, catalog)
    if offer is None:
        return None
    values = _group_values(offer, usage_of(offer.group), Presets(), [])
    return _ENVIRONMENT.get_template("primehub_group.html").render(selected=group, **values)


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """The submitted form as ``user_options`` (the REST shape); checking is left to the one validator."""

    def first(key: str) -> str:
        values = formdata.get(key) or [""]
        return values[0].strip()

    # A checkbox sends "on" or nothing; anything else is passed on for the validator to refuse.
    safe_mode = first("safe_mode")
    options: dict[str, Any] = {"safe_mode": {"on": True, "": False}.get(safe_mode, safe_mode)}
    group = first("group")
    if group:
        options["group"] = group
        for key in ("instance_type", "image"):
            value = first(f"{key}.{group}")
            if value:
                options[key] = value
    names = formdata.get("env_name") or []
    values = formdata.get("env_value") or []
    env = {}
    for index, name in enumerate(names):
        name = name.strip()
        if name:
            env[name] = values[index] if index < len(values) else ""
    options["env"] = env
    return options
