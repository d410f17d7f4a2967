pytest_plugins = ["devstack.testing"]

from tests.hub_stack import hub_factory  # noqa: E402, F401 - the fixture, for every test module
