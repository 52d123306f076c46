/**
 * The browser of the console tests: Debian's chromium package. Installed with apt-get when it is
 * missing and this process may (root); never a browser download of playwright's own.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const CANDIDATES = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"];

const found = () => CANDIDATES.find((path) => existsSync(path));

export function chromiumPath(): string {
  const present = found();
  if (present) return present;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) {
    throw new Error("chromium is not installed: run `apt-get install -y chromium` as root (Debian's package), then retry");
  }
  console.log("# chromium is missing: apt-get install -y chromium");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let install = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { stdio: "inherit", env });
  if (install.status !== 0) {
    execFileSync("apt-get", ["update"], { stdio: "inherit", env });
    install = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { stdio: "inherit", env });
  }
  const installed = found();
  if (install.status !== 0 || !installed)
    throw new Error("`apt-get install -y chromium` failed; install Debian's chromium and retry");
  return installed;
}
