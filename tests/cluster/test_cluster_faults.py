"""A three-node RabbitMQ cluster with quorum queues, and Redis behind Sentinels, under faults
while clients keep submitting.

Every process is given the three nodes (in different orders, so that they spread over the
cluster). A node killed (SIGKILL: the one holding the work queues' leaders), stopped (the
one a worker is connected to) or cut off from the other two (a minority partition) mid-run
must cost no accepted job, dial no call twice and leave
no job stuck: publishers move to a live node and keep confirming, consumers resume there.
The same holds when the Redis master is SIGKILLed: clients follow the Sentinels to the replica
they promote; with REDIS_WAIT_REPLICAS=1 a 202 and a dial both wait for a replica to hold the
record or the claim, a record lost anyway is rebuilt by the worker from the job's message, and
a job whose last change was lost is given its message again by the sweeper. A planned
`SENTINEL FAILOVER` leaves the old master taking writes for seconds, which are erased later:
workers and the API check with the Sentinels before they ack or answer 202, and make their
writes again on the new master (store/fence.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest
import redis.asyncio as aioredis

from tests.cluster.rabbit_cluster import ClusterNode, RabbitCluster
from tests.cluster.redis_sentinel import SentinelGroup
from tests.faults.servers import RedisServer
from tests.faults.stack import (
    DIALER_PLACED,
    Stack,
    Submitter,
    counts_are_exact,
    originations,
    wait_terminal,
)
from tests.figures import record

pytestmark = pytest.mark.timeout(420)

JOBS = 300
WORKERS = 3
# Accepted while the node is down before it is brought back: publishers kept confirming.
ACCEPTED_DURING_OUTAGE = 40


def _start(stack: Stack, cluster: RabbitCluster) -> None:
    """WORKERS workers, each given the nodes starting from a different one."""
    size = len(cluster.nodes)
    for index in range(WORKERS):
        order = [(index + step) % size for step in range(size)]
        stack.start_worker(f"w{index}", RABBITMQ_URL=cluster.url(order))


async def _run_with_fault(
    stack: Stack,
    store: aioredis.Redis,
    fault: Callable[[], ClusterNode],
    restore: Callable[[ClusterNode], None],
) -> dict[str, object]:
    """Submit JOBS while `fault` takes a node out a third of the way in; the node comes back
    once ACCEPTED_DURING_OUTAGE more jobs were accepted without it. The checks every case
    shares; the figures returned."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        submitter = Submitter(client, JOBS)
        submitting = asyncio.create_task(submitter.run())
        try:
            await submitter.until_accepted(JOBS // 3)
            submitter.outage = True
            fault_at = time.monotonic()
            node = await asyncio.to_thread(fault)
            before = len(submitter.accepted)
            await asyncio.wait_for(
                submitter.until_accepted(before + ACCEPTED_DURING_OUTAGE), timeout=120
            )
            confirming_again_s = time.monotonic() - fault_at
            await asyncio.to_thread(restore, node)
            submitter.outage = False
            await asyncio.wait_for(submitting, timeout=180)
            final = await wait_terminal(store, stack.keys, submitter.accepted, timeout=180)
        except BaseException:
            submitting.cancel()
            stack.dump_logs()
            raise
    accepted = len(submitter.accepted)
    assert submitter.transport_errors == []
    assert set(submitter.codes) <= {202, 503}, submitter.codes
    assert len(set(submitter.accepted)) == accepted >= JOBS
    # Terminal means completed (the simulated number answers) or failed with a reason.
    assert set(final.values()) <= {"completed", "failed"}
    twice = {call: n for call, n in originations(stack.worker_logs()).items() if n > 1}
    placed_twice = {
        call: n for call, n in originations(stack.worker_logs(), DIALER_PLACED).items() if n > 1
    }
    assert twice == {}
    assert placed_twice == {}
    counts = await counts_are_exact(store, stack.keys)
    assert counts["total"] == accepted
    assert counts["completed"] + counts["failed"] == accepted
    assert all(proc.alive() for proc in stack.procs)
    return {
        "accepted": accepted,
        "refused_503": submitter.codes[503],
        "jobs_lost": accepted - counts["completed"] - counts["failed"],
        "failed": counts["failed"],
        "duplicate_originations": len(twice),
        "stuck": 0,
        "accepting_again_after_s": round(confirming_again_s, 1),
        "seconds": round(time.monotonic() - started, 1),
    }


async def test_kill_9_of_the_node_holding_the_queue_leaders(
    cluster_stack: Stack, cluster_store: aioredis.Redis, rabbit_cluster: RabbitCluster
) -> None:
    stack = cluster_stack
    await stack.start_api()
    _start(stack, rabbit_cluster)
    killed: list[str] = []

    def kill_leader() -> ClusterNode:
        node = rabbit_cluster.leader_of(stack.names.calls)
        killed.append(node.label)
        node.kill()
        return node

    def restart(node: ClusterNode) -> None:
        node.start()
        rabbit_cluster.wait_members(len(rabbit_cluster.nodes))

    figures = await _run_with_fault(stack, cluster_store, kill_leader, restart)
    record("cluster_kill_leader_node", killed=killed[0], **figures)


async def test_stop_the_node_a_worker_is_connected_to(
    cluster_stack: Stack, cluster_store: aioredis.Redis, rabbit_cluster: RabbitCluster
) -> None:
    stack = cluster_stack
    await stack.start_api()
    _start(stack, rabbit_cluster)
    worker = f"worker:{stack.tag}-w1"
    moved: list[str] = []

    def stop_workers_node() -> ClusterNode:
        node = rabbit_cluster.node_of_connection(worker)
        node.stop()
        return node

    def restart(node: ClusterNode) -> None:
        # The worker is on another node by now (it kept consuming: jobs were finishing).
        moved.append(rabbit_cluster.node_of_connection(worker).label)
        assert moved[0] != node.label
        node.start()
        rabbit_cluster.wait_members(len(rabbit_cluster.nodes))

    figures = await _run_with_fault(stack, cluster_store, stop_workers_node, restart)
    record("cluster_stop_worker_node", worker_moved_to=moved[0], **figures)


async def test_a_minority_partition(
    cluster_stack: Stack, cluster_store: aioredis.Redis, rabbit_cluster: RabbitCluster
) -> None:
    """The third node is cut off from the other two (both ways, at the Erlang distribution):
    it pauses itself (pause_minority) and drops its clients, who move to the majority."""
    stack = cluster_stack
    await stack.start_api()
    _start(stack, rabbit_cluster)
    cut = rabbit_cluster.nodes[2]
    majority = rabbit_cluster.nodes[0]

    def partition() -> ClusterNode:
        rabbit_cluster.partition(cut)
        # Each rabbitmqctl call starts an Erlang VM: on a loaded machine a few seconds each.
        deadline = time.monotonic() + 150
        while True:
            try:
                if cut.node not in rabbit_cluster.running_members_seen_by(majority):
                    return cut
            except subprocess.CalledProcessError:
                pass  # rabbitmqctl can fail while the majority handles the cut: ask again
            if time.monotonic() > deadline:
                raise TimeoutError("the majority still counts the cut node")
            time.sleep(0.2)

    def heal(node: ClusterNode) -> None:
        # The worker that started on the cut node serves from the majority now.
        assert rabbit_cluster.node_of_connection(f"worker:{stack.tag}-w2") is not node
        rabbit_cluster.heal(node)
        rabbit_cluster.wait_members(len(rabbit_cluster.nodes))

    figures = await _run_with_fault(stack, cluster_store, partition, heal)
    record("cluster_minority_partition", **figures)


async def test_redis_master_killed_mid_run(
    sentinel_stack: Stack,
    sentinel_store: aioredis.Redis,
    sentinel_group: SentinelGroup,
    rabbit_cluster: RabbitCluster,
) -> None:
    killed: list[RedisServer] = []

    def kill() -> None:
        killed.append(sentinel_group.kill_master()[0])

    def restart() -> None:
        # Back as a replica of the promoted master, once jobs were accepted without it.
        killed[0].start()

    figures = await _run_with_redis_fault(
        sentinel_stack, sentinel_store, sentinel_group, rabbit_cluster, kill, restart
    )
    record("redis_sentinel_master_killed", **figures)


async def test_sentinel_failover_with_the_old_master_still_up(
    sentinel_stack: Stack,
    sentinel_store: aioredis.Redis,
    sentinel_group: SentinelGroup,
    rabbit_cluster: RabbitCluster,
) -> None:
    """A planned `SENTINEL FAILOVER`: the old master keeps answering until the Sentinels turn
    it into a replica, so writes made there meanwhile are lost when it resynchronises. The
    fence (store/fence.py) has them made again on the new master before a message is acked
    or a 202 answered."""

    def failover() -> None:
        sentinel_group.failover()

    figures = await _run_with_redis_fault(
        sentinel_stack, sentinel_store, sentinel_group, rabbit_cluster, failover, lambda: None
    )
    record("redis_sentinel_failover", **figures)


async def _run_with_redis_fault(
    stack: Stack,
    store: aioredis.Redis,
    group: SentinelGroup,
    rabbit_cluster: RabbitCluster,
    fault: Callable[[], None],
    restore: Callable[[], None],
) -> dict[str, object]:
    """Submit JOBS while `fault` moves the Redis master a third of the way in; every accepted
    job ends once, none is dialed twice, the counters are exact."""
    # The API's records and the workers' call claims reach a replica before they count; a
    # job whose last change was lost anyway is found by the sweeper after 15 s.
    stack.overrides.update(REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT_MS=500, SWEEP_AFTER_SECONDS=15)
    await stack.start_api()
    _start(stack, rabbit_cluster)
    started = time.monotonic()
    masters = [group.current_master().port]
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        submitter = Submitter(client, JOBS)
        submitting = asyncio.create_task(submitter.run())
        try:
            await submitter.until_accepted(JOBS // 3)
            submitter.outage = True
            await asyncio.to_thread(fault)
            masters.append(group.current_master().port)
            before = len(submitter.accepted)
            await asyncio.wait_for(
                submitter.until_accepted(before + ACCEPTED_DURING_OUTAGE), timeout=120
            )
            await asyncio.to_thread(restore)
            await asyncio.to_thread(group.wait_synced)
            submitter.outage = False
            await asyncio.wait_for(submitting, timeout=180)
            final = await wait_terminal(store, stack.keys, submitter.accepted, timeout=180)
        except BaseException:
            submitting.cancel()
            stack.dump_logs()
            raise
    accepted = len(submitter.accepted)
    assert masters[0] != masters[1], "the master did not move"
    assert submitter.transport_errors == []
    assert set(submitter.codes) <= {202, 503}, submitter.codes
    assert len(set(submitter.accepted)) == accepted >= JOBS
    assert set(final.values()) <= {"completed", "failed"}
    twice = {call: n for call, n in originations(stack.worker_logs()).items() if n > 1}
    assert twice == {}
    assert all(proc.alive() for proc in stack.procs)
    counts = await counts_are_exact(store, stack.keys)
    return {
        "accepted": accepted,
        "refused_503": submitter.codes[503],
        "jobs_lost": accepted - sum(1 for s in final.values() if s in {"completed", "failed"}),
        "failed": counts["failed"],
        "records_rebuilt": _log_count(stack, "job record rebuilt"),
        # Deliveries and submissions whose writes the fence had made again on the new master.
        "deliveries_rewritten": _log_count(stack, "redis master switched during the job"),
        "submissions_rewritten": _api_log_count(stack, "redis master switched while accepting"),
        "duplicate_originations": len(twice),
        "stuck": 0,
        "seconds": round(time.monotonic() - started, 1),
    }


def _log_count(stack: Stack, event: str) -> int:
    return sum(log.read_text(errors="replace").count(event) for log in stack.worker_logs())


def _api_log_count(stack: Stack, event: str) -> int:
    return sum(
        log.read_text(errors="replace").count(event) for log in stack.log_dir.glob("api*.log")
    )
