"""Redis behind Sentinel: the master is killed while patients submit; no patient sees an error,
and every lead is routed and every email delivered after the replica is promoted."""

import pytest

from tests.fault.conftest import EMAILS_PER_LEAD, Stack, in_background
from tests.helpers import wait_until
from tests.servers import SentinelCluster

LEADS = 30


@pytest.fixture(scope="module")
def sentinel_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentinel")
    cluster = SentinelCluster(root)
    stack = Stack(root, broker=cluster)
    try:
        stack.start()
        yield stack, cluster
    finally:
        stack.stop()


def test_the_master_killed_during_submissions_fails_over_without_an_error(sentinel_stack):
    stack, cluster = sentinel_stack
    tag = stack.new_tag("sentinel-failover")
    submitting = in_background(stack.submit, tag, LEADS, 2)
    wait_until(lambda: len(stack.leads(tag)) >= 5, timeout=60)
    old_master = cluster.kill_master()
    answers = submitting.result(timeout=180)
    new_master = cluster.wait_for_failover(old_master)
    # The readiness probe asks Sentinel for the master, so it follows the failover.
    wait_until(lambda: stack.get("/readyz") == 200, timeout=30)

    stack.wait_until_routed(tag, LEADS, timeout=120)
    stack.wait_until_settled(tag, LEADS * EMAILS_PER_LEAD, timeout=120)
    figures = stack.figures("Redis master killed during submissions, Sentinel failover", tag, answers)
    assert new_master != old_master
    assert answers == {303: LEADS}
    assert figures["stored"] == LEADS and figures["patients stored twice"] == 0
    assert figures["routed"] == LEADS and figures["duplicate assignments"] == 0
    assert figures["sent"] == figures["delivered"] == LEADS * EMAILS_PER_LEAD
    assert figures["delivered twice"] == 0
