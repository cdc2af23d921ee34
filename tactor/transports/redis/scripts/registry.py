"""Lua scripts of the registry: registering providers (``REGISTER``), reading them
(``PROVIDERS``, ``REGISTRY``) and the endpoints (``ENDPOINTS``, ``DROP_ENDPOINT``); the
heartbeat that keeps nodes and inboxes live (``HEARTBEAT``) and the test of who is (``LIVE``).
"""

from __future__ import annotations

from .clock import _NOW

__all__ = [
    "DROP_ENDPOINT",
    "ENDPOINTS",
    "HEARTBEAT",
    "LEAVE",
    "LIVE",
    "PROVIDERS",
    "REGISTER",
    "REGISTRY",
]

# The registry of an endpoint is two keys: a sorted set of the nodes serving it, scored by
# their expiry (kept by each node's heartbeat: one entry per node, not per provider), and a
# hash provider -> node. A provider is live while its node is.
#
# Each registry sorted set has an *up key* beside it, which lives until the latest expiry in
# the set: a delivery to any provider of the endpoint tests that the key exists instead of
# reading the server's clock and counting the live nodes (on Redis 7 that costs a script more
# than all the rest of a delivery). A node that registers or beats extends it to its own
# expiry (``extend_up``), one that leaves cuts it back to the others' (``up``); so it expires
# when the last entry does.
_UP = """
local function extend_up(key, ttl)  -- a node is live for ttl ms more: so is the endpoint
    if redis.call('ZADD', key, 0, 'up') == 1 then  -- (a sorted set, and PEXPIRE: what a
        redis.call('PEXPIRE', key, ttl)             -- restricted ACL user may write)
    else
        redis.call('PEXPIRE', key, ttl, 'GT')
    end
end
local function up(zset, key, now)  -- a node left: until the latest expiry of the others
    local top = redis.call('ZRANGE', zset, -1, -1, 'WITHSCORES')
    local left = top[2] and tonumber(top[2]) - now or 0
    if left > 0 then redis.call('PEXPIRE', key, left) else redis.call('DEL', key) end
end
"""

# KEYS: registry nodes, registry providers, their infos, the endpoints zset, the up key | ARGV:
# ttl_ms, node, provider, the keys' lifetime, the provider's info, its endpoint.
REGISTER = (
    _NOW
    + _UP
    + """
local expiry = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], expiry, ARGV[2])
extend_up(KEYS[5], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[5])
redis.call('ZADD', KEYS[4], expiry, ARGV[6])
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
return 1
"""
)

# KEYS: registry nodes, registry providers. The providers whose node is live.
PROVIDERS = (
    _NOW
    + """
local live = {}
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
    live[node] = true
end
local found = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
    if live[flat[i + 1]] then table.insert(found, flat[i]) end
end
return found
"""
)

# KEYS: zset..., then keys that live only while their owner does
# ARGV: ttl_ms, how many zsets, one member per zset, the keys' lifetime in ms (0: a light beat),
# then per zset entry a key it needs ('' for none), then per zset entry its up key ('' for none).
# Extends (or re-creates) each zset entry — not one whose needed key is gone (a registry's hash
# of providers, lost with a restart: the entry would make the node live with no providers) —
# and sets its up key again; unless light, drops expired ones and extends each owned key.
# A zset of another type is skipped, not fatal: the others are kept alive. Returns
# {{key, error, key, error, ...} for the skipped ones, {owned keys that were gone}}.
# Any other error (READONLY) fails it.
HEARTBEAT = (
    _NOW
    + _UP
    + """
local zsets = tonumber(ARGV[2])
local lifetime = ARGV[zsets + 3]
local refused, swept = {}, {}
local gone = {}
for i = 1, zsets do
    local need = ARGV[zsets + 3 + i]
    local added = nil  -- (not extended: its needed key is gone)
    if need ~= '' and redis.call('EXISTS', need) == 0 then
        table.insert(gone, need)
    else
        added = redis.pcall('ZADD', KEYS[i], now + tonumber(ARGV[1]), ARGV[i + 2])
        -- Not there before: its entries may have been dropped as a dead node's (see
        -- REGISTRY): the node writes its fields of the hash again.
        if added == 1 and need ~= '' then table.insert(gone, need) end
    end
    if type(added) == 'table' and added.err then
        if string.sub(added.err, 1, 9) ~= 'WRONGTYPE' then return redis.error_reply(added.err) end
        table.insert(refused, KEYS[i])
        table.insert(refused, added.err)
    else
        local key = ARGV[2 * zsets + 3 + i]
        if added and key ~= '' then extend_up(key, ARGV[1]) end
        if lifetime ~= '0' and not swept[KEYS[i]] then
            swept[KEYS[i]] = true
            redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
        end
    end
end
for i = zsets + 1, #KEYS do
    if redis.call('PEXPIRE', KEYS[i], lifetime) == 0 then table.insert(gone, KEYS[i]) end
end
return {refused, gone}
"""
)

# KEYS: zset, its up key | ARGV: member. Remove the member, and set the up key again.
LEAVE = (
    _NOW
    + _UP
    + """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
up(KEYS[1], KEYS[2], now)
return removed
"""
)

# KEYS: zset | ARGV: members to test (none: list the live ones).
LIVE = (
    _NOW
    + """
if #ARGV == 0 then
    return redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')
end
local live = {}
for _, member in ipairs(ARGV) do
    local expiry = redis.call('ZSCORE', KEYS[1], member)
    if expiry and tonumber(expiry) >= now then table.insert(live, member) end
end
return live
"""
)

# KEYS: registry nodes, registry providers, their infos (hashes). Returns {provider, info, ...}
# of the live providers (those of a live node; '' for an info lost). Drops what dead nodes left:
# their providers, their infos, the nodes themselves (a node that was only late to beat sees
# that it was dropped at its next beat, and writes its providers again: see HEARTBEAT).
REGISTRY = (
    _NOW
    + """
local live = {}
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
    live[node] = true
end
local found, registered = {}, {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
    local provider, node = flat[i], flat[i + 1]
    if live[node] then
        registered[provider] = true
        table.insert(found, provider)
        table.insert(found, redis.call('HGET', KEYS[3], provider) or '')
    else
        redis.call('HDEL', KEYS[2], provider)
        redis.call('ZREM', KEYS[1], node)
    end
end
for _, provider in ipairs(redis.call('HKEYS', KEYS[3])) do
    if not registered[provider] then redis.call('HDEL', KEYS[3], provider) end
end
return found
"""
)

# KEYS: the endpoints zset | ARGV: the prefix of registry keys. The live endpoints that have a
# live node (registry keys are named from the endpoints, within the transport's prefix).
ENDPOINTS = (
    _NOW
    + """
local found = {}
for _, endpoint in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
    if redis.call('ZCOUNT', ARGV[1] .. endpoint, now, '+inf') > 0 then
        table.insert(found, endpoint)
    end
end
return found
"""
)

# KEYS: registry zset, the endpoints zset | ARGV: endpoint. Drop the endpoint from the list of
# endpoints unless it has a live provider (registering adds to the registry first).
DROP_ENDPOINT = (
    _NOW
    + """
if redis.call('ZCOUNT', KEYS[1], now, '+inf') > 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
)
