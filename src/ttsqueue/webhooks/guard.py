"""The HTTP client webhooks are sent with: the address that is checked is the address that is
connected to.

Checking a name and then letting the HTTP client resolve it again leaves a gap a receiver's
DNS can use (DNS rebinding: a public answer for the check, 127.0.0.1 for the connection). Here
the network backend under httpx resolves each name once per connection, refuses forbidden
answers (unless private targets are allowed), and opens the TCP connection to one of the
addresses it checked. httpx still sends the original name in `Host` and TLS still uses it for
SNI and certificate verification, because both come from the URL, not from the socket.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable

import httpcore
import httpx

from ttsqueue.webhooks.addresses import Resolver, refuse_forbidden, system_resolver


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, refuses forbidden addresses, connects to the checked address."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            async with asyncio.timeout(timeout):
                addresses = list(await self.resolver(host, port))
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        if not self.allow_private:
            refuse_forbidden(host, addresses)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent over a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (same request handling and error mapping) over a connection
    pool whose every connection goes through a `GuardedNetworkBackend`."""

    def __init__(
        self, backend: GuardedNetworkBackend, *, verify: ssl.SSLContext | bool = True
    ) -> None:
        context = httpx.create_ssl_context(verify=verify)
        super().__init__(verify=context)
        # The transport offers no network_backend argument; its pool is swapped for one
        # built the same way with the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def webhook_client(
    *,
    timeout: float,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """The client for webhook deliveries: guarded connections, no redirects (they could lead
    anywhere), no proxy or netrc taken from the environment."""
    backend = GuardedNetworkBackend(allow_private=allow_private, resolver=resolver)
    return httpx.AsyncClient(
        transport=GuardedTransport(backend, verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
