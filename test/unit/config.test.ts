/**
 * RS_* parsing as pure functions: byte sizes with units, base path normalisation, defaults, the
 * error naming the first bad variable, and the per-env cache.
 */
import { describe, expect, it } from "vitest";
import {
  basePathFromEnv,
  ConfigError,
  configFromEnv,
  DEFAULT_INSTANCE_NAME,
  DEFAULT_MAX_BLOCK_BYTES,
  DEFAULT_MAX_BLOCK_RECORDS,
  DEFAULT_MAX_RECORD_BYTES,
  logLevelFromEnv,
  normaliseBasePath,
  parseByteSize,
  parseConfig,
} from "../../src/config";

describe("parseByteSize", () => {
  it.each([
    ["0", 0],
    ["1024", 1024],
    [" 64MB ", 64_000_000],
    ["64 mb", 64_000_000],
    ["1B", 1],
    ["2KB", 2000],
    ["3 GB", 3e9],
    ["1TB", 1e12],
    ["1KiB", 1024],
    ["5 MiB", 5 * 1024 ** 2],
    ["1gib", 1024 ** 3],
    ["2TiB", 2 * 1024 ** 4],
  ])("%s → %i bytes", (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each([[""], ["abc"], ["-1"], ["1.5MB"], ["10XB"], ["1e6"], ["MB"], ["1 2"], ["99999999999999999999"], ["9000 TiB"]])(
    "%s is refused",
    (text) => {
      expect(parseByteSize(text)).toBeUndefined();
    },
  );
});

describe("normaliseBasePath and basePathFromEnv", () => {
  it.each([
    [undefined, "/"],
    ["", "/"],
    ["/", "/"],
    ["///", "/"],
    ["base", "/base/"],
    ["/base", "/base/"],
    ["base/", "/base/"],
    ["//base//", "/base/"],
    [" /a/b/ ", "/a/b/"],
  ])("normaliseBasePath(%s) → %s", (input, expected) => {
    expect(normaliseBasePath(input)).toBe(expected);
  });

  it.each([
    [{}, "/"],
    [{ RS_API_BASE_PATH: "" }, "/"],
    [{ RS_API_BASE_PATH: "reduct" }, "/reduct/"],
    [{ RS_API_BASE_PATH: "/a/b" }, "/a/b/"],
    [{ RS_API_BASE_PATH: "a b" }, "/"],
    [{ RS_API_BASE_PATH: "x?y" }, "/"],
    [{ RS_API_BASE_PATH: "../" }, "/"],
    [{ RS_API_BASE_PATH: "a/./b" }, "/"],
    [{ RS_API_BASE_PATH: "v1.2/a..b/.x" }, "/v1.2/a..b/.x/"],
  ])("basePathFromEnv(%o) → %s", (env, expected) => {
    expect(basePathFromEnv(env)).toBe(expected);
  });
});

describe("parseConfig", () => {
  it("without variables: the reference defaults, and auth unconfigured", () => {
    expect(parseConfig({})).toStrictEqual({
      auth: { kind: "unconfigured" },
      instanceName: DEFAULT_INSTANCE_NAME,
      instanceRole: "STANDALONE",
      basePath: "/",
      corsAllowOrigins: [],
      bucketDefaults: {
        max_block_size: DEFAULT_MAX_BLOCK_BYTES,
        max_block_records: DEFAULT_MAX_BLOCK_RECORDS,
        quota_type: "NONE",
        quota_size: 0,
      },
      maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
      batch: { maxRecords: 85, maxBytes: 8_000_000, maxMetadataBytes: 16_000 },
      logLevel: "INFO",
      ioTimeoutMs: 30_000,
      systemEvents: { enabled: true, quotaBytes: 10_000_000_000, flushIntervalMs: 60_000, usageIntervalMs: 60_000 },
      placement: {},
      replicationLogSize: 1_000_000,
    });
    expect(DEFAULT_MAX_BLOCK_BYTES).toBe(64_000_000);
    expect(DEFAULT_MAX_BLOCK_RECORDS).toBe(1024);
  });

  it("reads every variable", () => {
    expect(
      parseConfig({
        RS_API_TOKEN: "secret",
        RS_INSTANCE_NAME: "edge",
        RS_INSTANCE_ROLE: "standalone",
        RS_API_BASE_PATH: "/base",
        RS_CORS_ALLOW_ORIGIN: " https://a.example , ,https://b.example",
        RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE: "1KB",
        RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS: " 7 ",
        RS_DEFAULTS_BUCKET_QUOTA_TYPE: "hard",
        RS_DEFAULTS_BUCKET_QUOTA_SIZE: "1MiB",
        RS_MAX_RECORD_SIZE: "10MB",
        RS_IO_BATCH_MAX_RECORDS: "100",
        RS_IO_BATCH_MAX_SIZE: "1MB",
        RS_IO_BATCH_MAX_METADATA_SIZE: "32000",
        RS_LOG_LEVEL: "DEBUG",
        RS_IO_OPERATION_TIMEOUT: "5",
        RS_DO_JURISDICTION: "EU",
        RS_DO_LOCATION_HINT: " weur ",
        RS_REPLICATION_LOG_SIZE: "5000",
      }),
    ).toStrictEqual({
      auth: { kind: "token", initToken: "secret", initTokenProvisioned: true },
      instanceName: "edge",
      instanceRole: "STANDALONE",
      basePath: "/base/",
      corsAllowOrigins: ["https://a.example", "https://b.example"],
      bucketDefaults: { max_block_size: 1000, max_block_records: 7, quota_type: "HARD", quota_size: 1024 ** 2 },
      maxRecordBytes: 10_000_000,
      batch: { maxRecords: 100, maxBytes: 1_000_000, maxMetadataBytes: 32_000 },
      logLevel: "DEBUG",
      ioTimeoutMs: 5_000,
      systemEvents: { enabled: true, quotaBytes: 10_000_000_000, flushIntervalMs: 60_000, usageIntervalMs: 60_000 },
      placement: { jurisdiction: "eu", locationHint: "weur" },
      replicationLogSize: 5_000,
    });
  });

  it.each([
    ["TRACE", "TRACE"],
    ["DEBUG", "DEBUG"],
    ["INFO", "INFO"],
    ["WARN", "WARN"],
    ["ERROR", "ERROR"],
    ["debug", "DEBUG"],
    [" Warn ", "WARN"],
    ["WARNING", "WARN"],
  ])("RS_LOG_LEVEL=%s → %s, also when another variable is invalid", (value, level) => {
    expect(parseConfig({ RS_LOG_LEVEL: value }).logLevel).toBe(level);
    expect(logLevelFromEnv({ RS_LOG_LEVEL: value, RS_MAX_RECORD_SIZE: "none" })).toBe(level);
  });

  it.each([[undefined], [""], ["LOUD"], ["OFF"], ["5"]])("logLevelFromEnv(%s) → INFO", (value) => {
    expect(logLevelFromEnv({ RS_LOG_LEVEL: value })).toBe("INFO");
  });

  it.each([
    [{ RS_DISABLE_AUTH: "true" }, { kind: "disabled" }],
    [{ RS_DISABLE_AUTH: "YES" }, { kind: "disabled" }],
    [{ RS_DISABLE_AUTH: "false" }, { kind: "unconfigured" }],
    [{ RS_DISABLE_AUTH: "0" }, { kind: "unconfigured" }],
    [
      { RS_DISABLE_AUTH: "true", RS_API_TOKEN: "t" },
      { kind: "token", initToken: "t", initTokenProvisioned: true },
    ],
    [{ RS_API_TOKEN: "" }, { kind: "unconfigured" }],
    [{ RS_INIT_API_TOKEN: "i" }, { kind: "token", initToken: "i", initTokenProvisioned: false }],
    [
      { RS_INIT_API_TOKEN: "i", RS_DISABLE_AUTH: "true" },
      { kind: "token", initToken: "i", initTokenProvisioned: false },
    ],
    [
      { RS_INIT_API_TOKEN: "i", RS_API_TOKEN: "t" },
      { kind: "token", initToken: "t", initTokenProvisioned: true },
    ],
    [{ RS_INIT_API_TOKEN: "" }, { kind: "unconfigured" }],
  ])("auth mode of %o", (env, expected) => {
    expect(parseConfig(env).auth).toStrictEqual(expected);
  });

  it("ignores variables that are not RS_* and empty values", () => {
    const config = parseConfig({ RS_DEFAULTS_BUCKET_QUOTA_TYPE: "", ...({ OTHER: "x", RS_UNKNOWN: "y" } as object) });
    expect(config.bucketDefaults.quota_type).toBe("NONE");
  });

  it.each([
    ["RS_DEFAULTS_BUCKET_QUOTA_TYPE", "UNKNOWN"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE", "0"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE", "big"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS", "0"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS", "2.5"],
    ["RS_DEFAULTS_BUCKET_QUOTA_SIZE", "-3"],
    ["RS_MAX_RECORD_SIZE", "none"],
    ["RS_INSTANCE_ROLE", "PRIMARY"],
    ["RS_DISABLE_AUTH", "perhaps"],
    ["RS_API_BASE_PATH", "a b"],
    ["RS_API_BASE_PATH", "../"],
    ["RS_API_BASE_PATH", ".."],
    ["RS_API_BASE_PATH", "."],
    ["RS_API_BASE_PATH", "/./"],
    ["RS_API_BASE_PATH", "a/../b"],
    ["RS_API_BASE_PATH", "/a/./b/"],
    ["RS_API_BASE_PATH", "//..//"],
    ["RS_INSTANCE_NAME", "n".repeat(300)],
    ["RS_LOG_LEVEL", "LOUD"],
    ["RS_LOG_LEVEL", "OFF"],
    ["RS_IO_OPERATION_TIMEOUT", "0"],
    ["RS_IO_OPERATION_TIMEOUT", "1.5"],
    ["RS_IO_OPERATION_TIMEOUT", "30s"],
    ["RS_IO_OPERATION_TIMEOUT", "3601"],
    ["RS_SYSTEM_EVENTS_ENABLED", "maybe"],
    ["RS_SYSTEM_EVENTS_QUOTA_SIZE", "0"],
    ["RS_SYSTEM_EVENTS_QUOTA_SIZE", "lots"],
    ["RS_SYSTEM_EVENTS_FLUSH_INTERVAL", "0"],
    ["RS_SYSTEM_EVENTS_FLUSH_INTERVAL", "3601"],
    ["RS_SYSTEM_EVENTS_USAGE_INTERVAL", "0"],
    ["RS_SYSTEM_EVENTS_USAGE_INTERVAL", "60s"],
    ["RS_SYSTEM_EVENTS_USAGE_INTERVAL", "3601"],
    ["RS_DO_JURISDICTION", "us"],
    ["RS_DO_JURISDICTION", "eu,fedramp"],
    ["RS_DO_LOCATION_HINT", "mars"],
    ["RS_DO_LOCATION_HINT", "weur,enam"],
    ["RS_REPLICATION_LOG_SIZE", "0"],
    ["RS_REPLICATION_LOG_SIZE", "1M"],
  ])("%s=%s → ConfigError naming the variable", (variable, value) => {
    let error: unknown;
    try {
      parseConfig({ [variable]: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(new RegExp(`^Invalid value of ${variable}: .+`));
  });

  it.each([
    [{}, { enabled: true, quotaBytes: 10_000_000_000, flushIntervalMs: 60_000, usageIntervalMs: 60_000 }],
    [
      { RS_SYSTEM_EVENTS_ENABLED: "false", RS_SYSTEM_EVENTS_QUOTA_SIZE: "1GB", RS_SYSTEM_EVENTS_FLUSH_INTERVAL: "2" },
      { enabled: false, quotaBytes: 1_000_000_000, flushIntervalMs: 2_000, usageIntervalMs: 60_000 },
    ],
    [
      { RS_SYSTEM_EVENTS_USAGE_INTERVAL: "2" },
      { enabled: true, quotaBytes: 10_000_000_000, flushIntervalMs: 60_000, usageIntervalMs: 2_000 },
    ],
    [
      { RS_SYSTEM_EVENTS_USAGE_INTERVAL: " 3600 " },
      { enabled: true, quotaBytes: 10_000_000_000, flushIntervalMs: 60_000, usageIntervalMs: 3_600_000 },
    ],
  ])("system events %j → %j", (vars, expected) => {
    expect(parseConfig(vars).systemEvents).toEqual(expected);
  });

  it("configFromEnv parses once per env object and keeps throwing the same error for a bad one", () => {
    const good = { RS_INSTANCE_NAME: "cached" };
    expect(configFromEnv(good)).toBe(configFromEnv(good));
    const bad = { RS_DEFAULTS_BUCKET_QUOTA_TYPE: "X" };
    let first: unknown;
    let second: unknown;
    try {
      configFromEnv(bad);
    } catch (error) {
      first = error;
    }
    try {
      configFromEnv(bad);
    } catch (error) {
      second = error;
    }
    expect(first).toBeInstanceOf(ConfigError);
    expect(second).toBe(first);
  });

  it("configFromEnv parses once per set of RS_* values, even for a new env object per request", () => {
    const perRequest = () => ({ RS_INSTANCE_NAME: "per-request", DB: {}, OTHER: "x" });
    const first = configFromEnv(perRequest());
    expect(configFromEnv(perRequest())).toBe(first);
    // Different values are parsed anew, and the result follows them.
    const changed = configFromEnv({ RS_INSTANCE_NAME: "changed" });
    expect(changed).not.toBe(first);
    expect(changed.instanceName).toBe("changed");
    expect(configFromEnv(perRequest()).instanceName).toBe("per-request");
  });
});
