"""The server's time in Lua, for the scripts that need it: ``_NOW`` opens them and sets ``now``
(milliseconds).

Times are the server's (``TIME``), so liveness does not depend on the clocks
of the nodes. ``redis.replicate_commands()`` lets scripts that read ``TIME``
write on Redis before 7 (a no-op since then).
"""

from __future__ import annotations

_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
