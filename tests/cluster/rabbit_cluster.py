"""A three-node RabbitMQ cluster on this machine: own node names, ports and data directories,
one Erlang cookie, joined with `rabbitmqctl join_cluster`.

Each node is a `RabbitServer` of the fault suite whose HOME (where the cookie lives) is shared
with the others. `kill()` ends a node with SIGKILL (no shutdown, as a crashed machine);
`stop()` is the clean `rabbitmqctl stop`; a stopped or killed node started again rejoins the
cluster from its own data directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import time
import uuid
from pathlib import Path

from tests.faults.servers import RabbitServer, port_open

# A quick verdict on a lost peer: the cluster notices a partition within ~1.25 x this.
NET_TICKTIME_S = 4


class ClusterNode(RabbitServer):
    def __init__(self, base: Path, home: Path, label: str) -> None:
        super().__init__(base)
        self.home = home
        self.label = label
        self.node = f"ttsqclu-{label}-{uuid.uuid4().hex[:6]}@localhost"
        (base / "rabbitmq.conf").write_text(
            "cluster_partition_handling = pause_minority\n"
            "loopback_users = none\n"
            "log.console = false\n"
        )
        (base / "advanced.config").write_text(
            f"[{{kernel, [{{net_ticktime, {NET_TICKTIME_S}}}]}}].\n"
        )

    def _env(self) -> dict[str, str]:
        env = super()._env()
        env["HOME"] = str(self.home)
        return env

    def kill(self) -> None:
        """SIGKILL the whole node (beam and helpers): nothing is flushed or said goodbye."""
        popen = self._popen
        if popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(30)
        self._popen = None

    def vm_pid(self) -> int:
        """The operating-system process id of this node's Erlang VM."""
        return int(self.ctl("eval", "list_to_integer(os:getpid()).").strip())

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None and port_open(self.port)


class RabbitCluster:
    def __init__(self, base: Path, size: int = 3) -> None:
        home = base / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        self.nodes: list[ClusterNode] = []
        for index in range(size):
            node_dir = base / f"n{index + 1}"
            node_dir.mkdir()
            self.nodes.append(ClusterNode(node_dir, home, f"n{index + 1}"))

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.ctl("start_app")
        self.wait_members(len(self.nodes))

    def url(self, order: list[int] | None = None) -> str:
        """RABBITMQ_URL listing the nodes (indexes into `nodes`, in that order)."""
        picked = order if order is not None else list(range(len(self.nodes)))
        return ",".join(self.nodes[i].url for i in picked)

    def any_running(self) -> ClusterNode:
        for node in self.nodes:
            if node.running:
                return node
        raise RuntimeError("no cluster node is running")

    def running_members(self) -> set[str]:
        status = self.any_running().ctl("cluster_status", "--formatter", "json")
        found = re.search(r'"running_nodes"\s*:\s*\[([^\]]*)\]', status)
        return set(re.findall(r'"([^"]+)"', found.group(1))) if found else set()

    def wait_members(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                if len(self.running_members()) == count:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not reach {count} running nodes")
            time.sleep(0.5)

    def by_name(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.node == name:
                return node
        raise KeyError(name)

    def leader_of(self, queue: str) -> ClusterNode:
        """The node holding the quorum queue's leader (as the cluster reports it now)."""
        listing = self.any_running().ctl("list_queues", "name", "leader", "--no-table-headers")
        for line in listing.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return self.by_name(parts[1])
        raise KeyError(f"queue {queue} not found: {listing}")

    def node_of_connection(self, connection_name: str) -> ClusterNode:
        """The node a client's connection (by its connection_name) is attached to."""
        listing = self.any_running().ctl(
            "list_connections", "port", "client_properties", "--no-table-headers"
        )
        for line in listing.splitlines():
            if f'"{connection_name}"' in line:
                port = int(line.split()[0])
                return next(node for node in self.nodes if node.port == port)
        raise KeyError(f"no connection named {connection_name}: {listing}")

    def partition(self, node: ClusterNode) -> None:
        """Cut `node` off from the others, both ways, as a network partition would
        (pause_minority then pauses it).

        The others drop their links to it and refuse its cookie from then on. They do so one
        after the other, and a node that loses a peer asks the rest whether they still reach
        it: one that still does (its link not yet dropped) makes the asker pause until the
        whole cluster is back ("partial partition"), which would pause the majority too. So
        the cut node's VM is frozen (SIGSTOP) while the links are dropped: the check cannot
        reach it, and it finds every link gone when it runs again."""
        pid = node.vm_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            self._on_majority(
                node,
                "[begin rpc:call(M, erlang, set_cookie, [Cut, 'ttsq-partitioned']),"
                " rpc:call(M, erlang, disconnect_node, [Cut]) end || M <- Majority], ok.",
            )
        finally:
            os.kill(pid, signal.SIGCONT)

    def heal(self, node: ClusterNode) -> None:
        """Undo `partition`: the others take the cluster's cookie from it again and reconnect."""
        self._on_majority(
            node,
            "[begin rpc:call(M, erlang, set_cookie, [Cut, erlang:get_cookie()]),"
            " rpc:call(M, net_adm, ping, [Cut]) end || M <- Majority], ok.",
        )

    def _on_majority(self, cut: ClusterNode, expression: str) -> None:
        """Evaluate `expression` on one of the other nodes, with `Cut` and `Majority` bound."""
        majority = [other for other in self.nodes if other is not cut]
        atoms = ", ".join(f"'{other.node}'" for other in majority)
        majority[0].ctl("eval", f"Cut = '{cut.node}', Majority = [{atoms}], {expression}")

    def serving(self, node: ClusterNode) -> bool:
        """Whether `node` runs RabbitMQ (a paused minority node does not)."""
        try:
            return node.node in self.running_members_seen_by(node)
        except Exception:
            return False

    def running_members_seen_by(self, node: ClusterNode) -> set[str]:
        status = node.ctl("cluster_status", "--formatter", "json")
        found = re.search(r'"running_nodes"\s*:\s*\[([^\]]*)\]', status)
        return set(re.findall(r'"([^"]+)"', found.group(1))) if found else set()

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.kill()
            node.close()
