"""Suite-wide settings: hypothesis draws the same examples on every run (derandomize), with no
example database, so two runs test the same cases and a failure reproduces; and the `tools`
marker, which skips a test whose host tools are missing (fails in strict mode)."""
from hypothesis import settings

settings.register_profile("mpq-deterministic", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile("mpq-deterministic")


def pytest_runtest_setup(item):
    """`@pytest.mark.tools(NAME, ...)`: the test needs those host tools (harness.pytest_plugin.require_tools)."""
    from harness.pytest_plugin import require_tools

    for marker in item.iter_markers("tools"):
        require_tools(*marker.args)
