"""Lua scripts of the shared queues: ``QUEUE_PUT``, ``QUEUE_TASK_DONE`` and ``QUEUE_WAKE``."""

from __future__ import annotations

__all__ = ["QUEUE_PUT", "QUEUE_TASK_DONE", "QUEUE_WAKE"]

# KEYS: queue list, unfinished counter | ARGV: maxsize (0: unbounded), payload.
# Returns 1 appended (and counted unfinished), 0 full. What can fail comes before the append
# (a script that fails keeps what it did): a put that fails puts nothing.
QUEUE_PUT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'list' then
    return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a ' .. kind .. ', not a list')
end
local maxsize = tonumber(ARGV[1])
if maxsize > 0 and redis.call('LLEN', KEYS[1]) >= maxsize then return 0 end
redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], ARGV[2])
return 1
"""

# KEYS: unfinished counter. Returns the count left, or -1 when none was unfinished (no change).
# A count back at zero is deleted, so a queue drained and done leaves no key behind.
QUEUE_TASK_DONE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return -1 end
if n == 1 then
    redis.call('DEL', KEYS[1])
    return 0
end
return redis.call('DECR', KEYS[1])
"""

# KEYS: the private wake-up list of one waiting get | ARGV: ttl_ms.
# Wakes that get's BLPOP; the token expires if the BLPOP had already ended.
QUEUE_WAKE = """
redis.call('RPUSH', KEYS[1], '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
