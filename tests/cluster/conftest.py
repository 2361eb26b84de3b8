"""Fixtures of the cluster suite: one three-node RabbitMQ cluster, one private Redis, and one
Redis master + replica + three Sentinels for the whole module (a cluster takes tens of seconds
to form), one isolated `Stack` per test.

A test may kill or stop nodes; the `cluster_stack` fixture starts them again and waits until
all three run before the next test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.cluster.rabbit_cluster import RabbitCluster
from tests.cluster.redis_sentinel import MASTER_NAME, SentinelGroup
from tests.faults.fixtures import (
    delete_keys,
    private_redis,
    require_rabbitmq,
    require_redis,
    scratch_dir,
)
from tests.faults.servers import RedisServer
from tests.faults.stack import Stack
from ttsqueue.store.connection import connect_sentinel_master


@pytest.fixture(scope="module")
def cluster_dir() -> Iterator[Path]:
    with scratch_dir("ttsq-cluster-") as path:
        yield path


@pytest.fixture(scope="module")
def rabbit_cluster(cluster_dir: Path) -> Iterator[RabbitCluster]:
    require_rabbitmq()
    cluster = RabbitCluster(cluster_dir / "rabbitmq")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def cluster_redis(cluster_dir: Path) -> Iterator[RedisServer]:
    with private_redis(cluster_dir / "redis") as server:
        yield server


@pytest.fixture
async def cluster_stack(
    rabbit_cluster: RabbitCluster, cluster_redis: RedisServer, tmp_path: Path
) -> AsyncIterator[Stack]:
    """A deployment on the cluster: quorum queues, every process given all three nodes."""
    stack = Stack(rabbit_cluster.nodes[0], cluster_redis, tmp_path)
    stack.overrides.update(RABBITMQ_URL=rabbit_cluster.url(), RABBITMQ_QUEUE_TYPE="quorum")
    try:
        yield stack
    finally:
        stack.close()
        for node in rabbit_cluster.nodes:
            if not node.running:
                node.stop()
                node.start()
        rabbit_cluster.wait_members(len(rabbit_cluster.nodes))


@pytest.fixture
async def cluster_store(cluster_stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(cluster_stack.redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await delete_keys(client, cluster_stack.redis_prefix)
        await client.aclose()


@pytest.fixture(scope="module")
def sentinel_group(cluster_dir: Path) -> Iterator[SentinelGroup]:
    require_redis()
    group = SentinelGroup(cluster_dir / "sentinel")
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
async def sentinel_stack(
    rabbit_cluster: RabbitCluster, sentinel_group: SentinelGroup, tmp_path: Path
) -> AsyncIterator[Stack]:
    """A deployment on the RabbitMQ cluster and on Redis through the Sentinels."""
    stack = Stack(rabbit_cluster.nodes[0], sentinel_group.current_master(), tmp_path)
    stack.overrides.update(
        RABBITMQ_URL=rabbit_cluster.url(),
        RABBITMQ_QUEUE_TYPE="quorum",
        REDIS_SENTINELS=sentinel_group.setting,
        REDIS_SENTINEL_MASTER=MASTER_NAME,
    )
    try:
        yield stack
    finally:
        stack.close()
        for server in sentinel_group.servers:
            if server._popen is None:
                server.start()
        sentinel_group.wait_synced()


@pytest.fixture
async def sentinel_store(
    sentinel_stack: Stack, sentinel_group: SentinelGroup
) -> AsyncIterator[aioredis.Redis]:
    """A client of whichever server is master now (the test's reads follow failovers)."""
    client = connect_sentinel_master(
        [("127.0.0.1", s.port) for s in sentinel_group.sentinels],
        MASTER_NAME,
        url="redis://127.0.0.1/0",
        client_name="pytest",
    )
    try:
        yield client
    finally:
        await delete_keys(client, sentinel_stack.redis_prefix)
        await client.aclose()
