"""The asyncio shell over :mod:`wire`, shared by the server and the agent.

:class:`~tunnel.mux.Mux` drives one :class:`wire.Connection` on an event loop;
:class:`~tunnel.link.SocketLink` joins one TCP socket to one stream with flow
control in both directions. The server's agent endpoint and the agent engine
are thin layers that feed WebSocket messages in and hand messages out.
:mod:`tunnel.units` writes byte counts and rates the same way on both sides.
"""

from tunnel.link import SocketLink, StreamSender
from tunnel.mux import Mux, StreamHandler

__all__ = ["Mux", "SocketLink", "StreamHandler", "StreamSender"]
