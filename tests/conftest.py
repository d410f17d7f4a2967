pytest_plugins = ["devstack.testing", "tests.reliability"]

# Fixtures for every test module.
from tests.browsers import browser  # noqa: E402, F401
from tests.demo_stack import demo_stack  # noqa: E402, F401
from tests.hub_stack import hub_factory  # noqa: E402, F401
