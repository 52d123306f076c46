/**
 * API audit without a write per request: each isolate sums calls in memory per (token, method,
 * path, client IP) and flushes the sums to `$system` (`audit/<instance>/<token>`, one record per
 * group) at most once per RS_SYSTEM_EVENTS_FLUSH_INTERVAL, from ctx.waitUntil after a response.
 * The first call of an isolate flushes at once, so a fresh server has `$system` and its first
 * audit record right away. Sums not yet flushed are lost when the isolate ends.
 */
import type { Bindings } from "../api/context";
import type { Config } from "../config";
import { entrySegment, recordSystemEvent } from "./events";

export interface AuditCall {
  tokenName: string;
  method: string;
  path: string;
  clientIp: string | null;
  durationMs: number;
}

interface AuditGroup {
  token_name: string;
  method: string;
  path: string;
  client_ip: string | null;
  call_count: number;
  /** Seconds, summed over the calls. */
  duration: number;
}

/** A bound on memory between flushes: calls beyond it are counted in no group (and not flushed). */
export const MAX_AUDIT_GROUPS = 1000;

export class AuditAggregator {
  private groups = new Map<string, AuditGroup>();
  private lastFlushAtMs: number | null = null;
  private flushing: Promise<void> | null = null;

  /** Adds one call; returns the flush to hand to ctx.waitUntil when one is due. */
  record(env: Bindings, config: Config, call: AuditCall, nowMs: number): Promise<void> | null {
    if (!config.systemEvents.enabled) return null;
    const key = JSON.stringify([call.tokenName, call.method, call.path, call.clientIp]);
    let group = this.groups.get(key);
    if (!group) {
      if (this.groups.size >= MAX_AUDIT_GROUPS) return this.flushIfDue(env, config, nowMs);
      group = {
        token_name: call.tokenName,
        method: call.method,
        path: call.path,
        client_ip: call.clientIp,
        call_count: 0,
        duration: 0,
      };
      this.groups.set(key, group);
    }
    group.call_count += 1;
    group.duration += call.durationMs / 1000;
    return this.flushIfDue(env, config, nowMs);
  }

  private flushIfDue(env: Bindings, config: Config, nowMs: number): Promise<void> | null {
    if (this.flushing || this.groups.size === 0) return null;
    if (this.lastFlushAtMs !== null && nowMs - this.lastFlushAtMs < config.systemEvents.flushIntervalMs) return null;
    this.lastFlushAtMs = nowMs;
    const groups = [...this.groups.values()];
    this.groups = new Map();
    this.flushing = this.write(env, config, groups).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async write(env: Bindings, config: Config, groups: AuditGroup[]): Promise<void> {
    const instance = entrySegment(config.instanceName);
    for (const group of groups) {
      try {
        const message = `${group.method} ${group.path}: ${group.call_count} call(s)`;
        await recordSystemEvent(env, config, `audit/${instance}/${entrySegment(group.token_name)}`, "ok", message, { ...group });
      } catch (error) {
        // Audit is best effort: a failed flush must never fail or slow a request.
        console.error("audit flush to $system failed:", error);
        return;
      }
    }
  }
}

/** This isolate's aggregator. */
export const auditAggregator = new AuditAggregator();
