"""Lua scripts of the registry: registering providers (``REGISTER``), reading them
(``PROVIDERS``, ``REGISTRY``) and the endpoints (``ENDPOINTS``, ``DROP_ENDPOINT``); the
heartbeat that keeps nodes and inboxes live (``HEARTBEAT``) and the test of who is (``LIVE``).
"""

from __future__ import annotations

from .clock import _NOW

__all__ = ["DROP_ENDPOINT", "ENDPOINTS", "HEARTBEAT", "LIVE", "PROVIDERS", "REGISTER", "REGISTRY"]

# The registry of an endpoint is two keys: a sorted set of the nodes serving it, scored by
# their expiry (kept by each node's heartbeat: one entry per node, not per provider), and a
# hash provider -> node. A provider is live while its node is.

# KEYS: registry nodes, registry providers, their infos, the endpoints zset | ARGV: ttl_ms, node,
# provider, the keys' lifetime, the provider's info, its endpoint.
REGISTER = (
    _NOW
    + """
local expiry = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], expiry, ARGV[2])
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
# then per zset entry a key it needs ('' for none).
# Extends (or re-creates) each zset entry — not one whose needed key is gone (a registry's hash
# of providers, lost with a restart: the entry would make the node live with no providers);
# unless light, drops expired ones and extends each owned key.
# A zset of another type is skipped, not fatal: the others are kept alive. Returns
# {{key, error, key, error, ...} for the skipped ones, {owned keys that were gone}}.
# Any other error (READONLY) fails it.
HEARTBEAT = (
    _NOW
    + """
local zsets = tonumber(ARGV[2])
local lifetime = ARGV[zsets + 3]
local refused, swept = {}, {}
local gone = {}
for i = 1, zsets do
    local need = ARGV[zsets + 3 + i]
    local added = 0
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
    elseif lifetime ~= '0' and not swept[KEYS[i]] then
        swept[KEYS[i]] = true
        redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    end
end
for i = zsets + 1, #KEYS do
    if redis.call('PEXPIRE', KEYS[i], lifetime) == 0 then table.insert(gone, KEYS[i]) end
end
return {refused, gone}
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
