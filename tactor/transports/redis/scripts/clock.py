"""The server's time in Lua, for the scripts that need it: ``_NOW`` opens them and sets ``now``
(milliseconds); a script that needs it only sometimes opens with ``_CLOCK`` and calls
``server_now()`` there (reading the clock costs a script on Redis 7 more than the commands
of a delivery).

Times are the server's (``TIME``), so liveness does not depend on the clocks
of the nodes. A script may write after reading ``TIME``: Redis 7 (tactor's
least) replicates a script's effects, never the script.
"""

from __future__ import annotations

_CLOCK = """
local function server_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

_NOW = _CLOCK + "local now = server_now()\n"
