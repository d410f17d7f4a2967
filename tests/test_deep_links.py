"""A launch link's ``path=``: only paths inside the user's server."""

import pytest
from tornado import web

from primehub_spawner.handlers import _deep_link


@pytest.mark.parametrize(
    "path",
    ["", "lab", "lab/tree/project/ml-team/report.ipynb", "lab/tree/a%20b.ipynb", "tree/dir/"],
)
def test_paths_inside_the_server(path):
    assert _deep_link(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "/hub/admin",
        "//evil.example/x",
        "../../hub/token",
        "lab/../../hub/token",
        "lab//x",
        "lab/tree/..",
        "lab/%2e%2e/%2E%2e/hub/token",
        "lab\\..\\hub",
        "lab/\x00",
        "lab/\nx",
        "x" * 2001,
    ],
)
def test_paths_leaving_the_server_are_a_400(path):
    with pytest.raises(web.HTTPError) as raised:
        _deep_link(path)
    assert raised.value.status_code == 400 and raised.value.log_message.startswith("path: ")
