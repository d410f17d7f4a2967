"""The Server Options form: what it shows per group, escaping, quota greying, presets, and reading it back."""

import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from primehub_spawner.catalog import Catalog, InstanceType
from primehub_spawner.context import Grants, GroupContext, LaunchContext, Quota, UserContext
from primehub_spawner.form import (
    GroupUsage,
    LaunchPresets,
    Presets,
    options_from_form,
    render,
    render_group,
)
from primehub_spawner.options import parse_user_options
from primehub_spawner.quota import Usage
from tests.test_permissions import CATALOG


class Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inputs, self.options, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input":
            self.inputs.append(attrs)
        if tag == "option":
            self.options.append(attrs)

    def handle_data(self, data):
        self.text.append(data)


def parse(html):
    parser = Inputs()
    parser.feed(html)
    return parser


def ctx(*groups, envs=()):
    return LaunchContext(
        user=UserContext("u", "alice", envs=envs),
        groups=tuple(groups),
        global_group=GroupContext(
            "e", "everyone", "Global", grants=Grants.from_roles(["it:cpu-1", "img:base"])
        ),
    )


ML = GroupContext(
    "g1",
    "ml",
    "ML <script>alert(1)</script>",
    user_quota=Quota(cpu=1.0),
    grants=Grants.from_roles(
        ["it:cpu-2", "it:gpu-1", "img:torch", "img:building", "ds:rw:scratch"]
    ),
)
CV = GroupContext("g2", "cv", "Vision & Co", grants=Grants.from_roles(["img:sci"]))
IDLE = GroupUsage(Usage(), Usage())


@pytest.mark.reliability("injection")
def test_groups_names_are_text_not_markup():
    html = render(ctx(ML, CV), CATALOG, lambda g: IDLE)
    assert "<script>alert(1)</script>" not in html
    assert "ML &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Vision &amp; Co" in html
    parsed = parse(html)
    assert [o["value"] for o in parsed.options] == ["ml", "cv"]


def test_only_the_selected_group_is_rendered_the_others_on_demand():
    html = render(ctx(ML, CV), CATALOG, lambda g: IDLE, group_url="/hub/primehub/options/alice/")
    names = {i.get("name") for i in parse(html).inputs}
    assert "instance_type.ml" in names and not any(n and n.endswith(".cv") for n in names)
    assert '<fieldset class="primehub-group" data-group="cv" data-lazy hidden></fieldset>' in html
    assert 'data-group-url="/hub/primehub/options/alice/"' in html
    part = render_group(ctx(ML, CV), CATALOG, lambda g: IDLE, "cv")
    inputs = parse(part).inputs
    assert {i["value"] for i in inputs if i.get("name") == "image.cv"} == {"sci", "base"}
    assert [i["value"] for i in inputs if "checked" in i and i["name"] == "instance_type.cv"] == [
        "cpu-1"
    ]
    assert "hidden" not in re.search(r"<fieldset[^>]*>", part).group(0)  # shown as it comes
    ml_part = render_group(ctx(ML, CV), CATALOG, lambda g: IDLE, "ml")
    assert "ML &lt;script&gt;" in ml_part and "<script>" not in ml_part
    assert render_group(ctx(ML, CV), CATALOG, lambda g: IDLE, "nope") is None


BIG = InstanceType.from_cr(
    {
        "metadata": {"name": "cpu-2"},
        "spec": {"displayName": "CPU 2", "limits": {"cpu": 2, "memory": "2G"}},
    }
)
WITH_BIG = Catalog(
    instance_types={**CATALOG.instance_types, "cpu-2": BIG},
    images=CATALOG.images,
    datasets=CATALOG.datasets,
)


def test_quota_greys_out_instance_types_and_not_ready_images_are_disabled():
    parsed = parse(render(ctx(ML), WITH_BIG, lambda g: GroupUsage(Usage(Decimal("0")), Usage())))
    types = {i["value"]: i for i in parsed.inputs if i.get("name") == "instance_type.ml"}
    assert (
        "disabled" in types["cpu-2"] and "disabled" not in types["gpu-1"]
    )  # 2 CPUs > the quota of 1
    assert "disabled" not in types["cpu-1"] and "checked" in types["cpu-1"]
    images = {i["value"]: i for i in parsed.inputs if i.get("name") == "image.ml"}
    assert "disabled" in images["building"]
    assert "Over quota — CPU: 1 allowed, 0 in use, 2 requested" in "".join(parsed.text)
    busy = parse(render(ctx(ML), WITH_BIG, lambda g: GroupUsage(Usage(Decimal("0.5")), Usage())))
    assert all(
        "disabled" in i for i in busy.inputs if i.get("name") == "instance_type.ml"
    )  # usage counts


def test_last_group_presets_and_notices():
    html = render(ctx(ML, CV), CATALOG, lambda g: IDLE, last_group="cv")
    assert 'data-selected-group="cv"' in html
    html = render(
        ctx(ML, CV),
        CATALOG,
        lambda g: IDLE,
        presets=Presets(group="vision", image="nope", autolaunch=True),
    )
    assert 'data-selected-group="ml"' in html
    assert "Group &#39;vision&#39; is not available to you" in html
    assert "Image &#39;nope&#39; is not available" in html
    assert 'data-autolaunch="true"' in html


def test_no_group_shows_a_message_instead_of_a_form():
    html = render(ctx(), CATALOG, lambda g: IDLE)
    assert "No group is configured for you to launch a server" in html
    assert 'name="group"' not in html


def test_env_presets_prefill_rows():
    parsed = parse(render(ctx(ML, envs=(("A", "<1>"),)), CATALOG, lambda g: IDLE))
    names = [i.get("value") for i in parsed.inputs if i.get("name") == "env_name"]
    values = [i.get("value") for i in parsed.inputs if i.get("name") == "env_value"]
    assert names[:1] == ["A"] and values[:1] == ["<1>"]


@pytest.mark.parametrize(
    ("formdata", "options"),
    [
        (
            {
                "group": ["ml"],
                "instance_type.ml": ["cpu-2"],
                "image.ml": ["torch"],
                "instance_type.cv": ["x"],
                "env_name": ["A", " ", "B"],
                "env_value": ["1", "ignored", "2"],
                "safe_mode": ["on"],
            },
            {
                "group": "ml",
                "instance_type": "cpu-2",
                "image": "torch",
                "safe_mode": True,
                "env": {"A": "1", "B": "2"},
            },
        ),
        ({}, {"safe_mode": False, "env": {}}),
        (
            {"group": ["cv"], "env_name": ["BAD NAME"], "env_value": ["x"]},
            {"group": "cv", "safe_mode": False, "env": {"BAD NAME": "x"}},
        ),
    ],
)
def test_options_from_form(formdata, options):
    assert options_from_form(formdata) == options


def test_form_options_go_through_the_same_validator():
    from primehub_spawner.options import OptionError

    with pytest.raises(OptionError, match=r"env\.BAD NAME: is not a valid variable name"):
        parse_user_options(
            options_from_form({"group": ["cv"], "env_name": ["BAD NAME"], "env_value": ["x"]})
        )


def test_launch_presets_are_kept_per_user_for_one_server_until_its_launch():
    box = LaunchPresets()
    box.discard("alice", "")  # nothing stored: nothing happens
    box.put("alice", "gpu", Presets(group="ml-team"))
    box.put("bob", "", Presets(group="phusers"))
    assert box.get("alice", "gpu") == Presets(group="ml-team")
    assert box.get("alice", "") == Presets()  # another server of hers
    box.put("alice", "", Presets(image="pytorch"))  # her latest link wins
    assert box.get("alice", "gpu") == Presets()
    box.discard("alice", "gpu")  # not the server the presets are for
    assert box.get("alice", "") == Presets(image="pytorch")
    box.discard("alice", "")
    assert box.get("alice", "") == Presets() and box.get("bob", "") == Presets(group="phusers")
