"""The session in-process runs get (``Io.session``): the product's own, except that ``.invalid`` names
resolve to NXDOMAIN here, as a resolver would, so no query leaves the machine (this one's resolver
forwards every name). The lookup fails where urllib3 makes its connection, and urllib3 and requests
wrap that failure as they wrap a real one; a name sent to a proxy (CONNECT) is not looked up here."""

from __future__ import annotations

import socket
from typing import Any, Dict, Mapping, Type, cast

import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection, connectionpool
from urllib3.exceptions import NameResolutionError

from asc_token.transport import Session, default_session


class _Lookup:
    """Mixed into urllib3's connections: the one step that would resolve the host name."""

    host: str

    def _new_conn(self) -> socket.socket:
        if self.host.endswith(".invalid"):
            lookup = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            raise NameResolutionError(self.host, cast(connection.HTTPConnection, self), lookup) from lookup
        return cast(socket.socket, super()._new_conn())  # type: ignore[misc]


# Named as urllib3's own, which its messages quote.
class HTTPConnection(_Lookup, connection.HTTPConnection):
    pass


class HTTPSConnection(_Lookup, connection.HTTPSConnection):
    pass


class HTTPConnectionPool(connectionpool.HTTPConnectionPool):
    ConnectionCls = HTTPConnection


class HTTPSConnectionPool(connectionpool.HTTPSConnectionPool):
    ConnectionCls = HTTPSConnection


_POOLS: Dict[str, Type[connectionpool.HTTPConnectionPool]] = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


def no_dns_for_invalid(env: Mapping[str, str]) -> Session:
    session = cast(requests.Session, default_session(env))
    for prefix in ("http://", "https://"):
        session.mount(prefix, _Adapter())
    return cast(Session, session)
