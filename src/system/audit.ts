/**
 * API audit without a write per request: each isolate sums calls in memory per (token, method,
 * path, client IP, HTTP status, error message), as ReductStore keys its audit sums, and flushes the sums to `$system` (`audit/<instance>/<token>`, one record per
 * group) at most once per RS_SYSTEM_EVENTS_FLUSH_INTERVAL, from ctx.waitUntil after a response.
 * The first call of an isolate flushes at once, so a fresh server has `$system` and its first
 * audit record right away. Sums not yet flushed are lost when the isolate ends. What is held is
 * bounded: at MAX_AUDIT_GROUPS groups (or MAX_AUDIT_CHARS of their strings) a flush starts at once.
 */

import type { Config } from "../config";
import type { Bindings } from "../env";
import { entrySegment, recordSystemEvent } from "./events";

export interface AuditCall {
  tokenName: string;
  method: string;
  path: string;
  clientIp: string | null;
  durationMs: number;
  /** The answer's HTTP status and its `x-reduct-error` ("" for a success). */
  status: number;
  message: string;
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

/** A group and what its record carries outside the payload: the status (also its label) and message. */
interface HeldGroup {
  group: AuditGroup;
  status: number;
  message: string;
}

/** Bounds on what an isolate holds between flushes: groups, and characters of their strings. */
export const MAX_AUDIT_GROUPS = 1000;
export const MAX_AUDIT_CHARS = 1024 * 1024;
/**
 * Calls that found the sums full while a flush was running are counted here and written as one
 * `warning` event. No name reaches it: entrySegment never writes `_o`.
 */
export const AUDIT_OVERFLOW_SEGMENT = "_overflow";

export interface AuditLimits {
  groups: number;
  chars: number;
}

export class AuditAggregator {
  /**
   * Sums by (token, method, client IP, status, message), then by path. The path is the inner key
   * and the group's `path` field, one string held once: a long path is not copied into a composite key.
   */
  private groups = new Map<string, Map<string, HeldGroup>>();
  private groupCount = 0;
  private heldChars = 0;
  private overflow = { calls: 0, duration: 0 };
  private lastFlushAtMs: number | null = null;
  private flushing: Promise<void> | null = null;

  constructor(private readonly limits: AuditLimits = { groups: MAX_AUDIT_GROUPS, chars: MAX_AUDIT_CHARS }) {}

  /** What is held now (groups, characters, calls counted only in the overflow), for tests and logs. */
  held(): { groups: number; chars: number; overflowCalls: number } {
    return { groups: this.groupCount, chars: this.heldChars, overflowCalls: this.overflow.calls };
  }

  /** Adds one call; returns the flush to hand to ctx.waitUntil when one is due. */
  record(env: Bindings, config: Config, call: AuditCall, nowMs: number): Promise<void> | null {
    if (!config.systemEvents.enabled) return null;
    const outer = JSON.stringify([call.tokenName, call.method, call.clientIp, call.status, call.message]);
    let held = this.groups.get(outer)?.get(call.path);
    let flush: Promise<void> | null = null;
    if (!held) {
      const chars = outer.length + call.path.length;
      if (this.groupCount >= this.limits.groups || this.heldChars + chars > this.limits.chars) {
        // Full: flush now, whatever the interval, rather than grow or drop. While a flush is still
        // running the call is counted in the overflow, written with the next flush.
        flush = this.flushNow(env, config, nowMs);
        if (flush === null || chars > this.limits.chars) {
          this.overflow.calls += 1;
          this.overflow.duration += call.durationMs / 1000;
          return flush;
        }
      }
      const group = {
        token_name: call.tokenName,
        method: call.method,
        path: call.path,
        client_ip: call.clientIp,
        call_count: 0,
        duration: 0,
      };
      held = { group, status: call.status, message: call.message };
      let byPath = this.groups.get(outer);
      if (!byPath) {
        byPath = new Map();
        this.groups.set(outer, byPath);
      }
      byPath.set(call.path, held);
      this.groupCount += 1;
      this.heldChars += chars;
    }
    held.group.call_count += 1;
    held.group.duration += call.durationMs / 1000;
    return flush ?? this.flushIfDue(env, config, nowMs);
  }

  private flushIfDue(env: Bindings, config: Config, nowMs: number): Promise<void> | null {
    if (this.lastFlushAtMs !== null && nowMs - this.lastFlushAtMs < config.systemEvents.flushIntervalMs) return null;
    return this.flushNow(env, config, nowMs);
  }

  /** Hands everything held to one flush; null while another flush runs or when nothing is held. */
  private flushNow(env: Bindings, config: Config, nowMs: number): Promise<void> | null {
    if (this.flushing || (this.groupCount === 0 && this.overflow.calls === 0)) return null;
    this.lastFlushAtMs = nowMs;
    const groups = [...this.groups.values()].flatMap((byPath) => [...byPath.values()]);
    const overflow = this.overflow;
    this.groups = new Map();
    this.groupCount = 0;
    this.heldChars = 0;
    this.overflow = { calls: 0, duration: 0 };
    this.flushing = this.write(env, config, groups, overflow).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async write(
    env: Bindings,
    config: Config,
    groups: HeldGroup[],
    overflow: { calls: number; duration: number },
  ): Promise<void> {
    const instance = entrySegment(config.instanceName);
    let written = 0;
    try {
      // ReductStore's record: {timestamp, instance, status, message, ...payload}, label status=<HTTP status>.
      for (const { group, status, message } of groups) {
        await recordSystemEvent(env, config, `audit/${instance}/${entrySegment(group.token_name)}`, status, message, {
          ...group,
        });
        written += 1;
      }
      if (overflow.calls > 0) {
        const message = `${overflow.calls} call(s) not counted by token and path: the audit sums were full while a flush ran`;
        await recordSystemEvent(env, config, `audit/${instance}/${AUDIT_OVERFLOW_SEGMENT}`, "warning", message, {
          call_count: overflow.calls,
          duration: overflow.duration,
        });
      }
    } catch (error) {
      // Audit is best effort: a failed flush must never fail or slow a request. What it held is
      // gone, so the log says how much.
      const lost = groups.slice(written).reduce((sum, held) => sum + held.group.call_count, 0) + overflow.calls;
      console.error(`audit flush to $system failed; ${lost} call(s) not recorded:`, error);
    }
  }
}

/** This isolate's aggregator. */
export const auditAggregator = new AuditAggregator();
