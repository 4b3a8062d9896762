// page_test.mjs: a real headless Chromium drives sosnode's page on node A, while sosctl
// talks to node B. Run by tests/http/test_http_browser.py, which starts the nodes and sets
// SOS_PAGE_URL (node A's HTTP URL), SOS_NODE_B (node B's ZeroMQ endpoint), SOSCTL and
// CHROMIUM. Exits non-zero with a message on the first failed check.
//
//   1. a room created in the page on A is read, decrypted, by sosctl through B;
//   2. a message sent by sosctl through B appears decrypted in the page;
//   3. the page with a wrong PIN shows that the messages cannot be decrypted;
//   4. the operator's tab shows the node's id, its workers and counters.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.env.SOS_PAGE_URL;
const nodeB = process.env.SOS_NODE_B;
const sosctl = process.env.SOSCTL;
const EMOJIS = "🆘🏠🔥";
const PIN = "4711";

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

function ctl(...args) {
  const out = execFileSync(sosctl, ["--node", nodeB, "--json", "--timeout", "10000", ...args],
                           { encoding: "utf8" });
  return JSON.parse(out);
}

async function retry(what, fn, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}` + (last ? `: ${last.message}` : ""));
}

async function enterRoom(context, pin, create, nickname) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(url + "/");
  await page.waitForSelector("body[data-ready='1']", { timeout: 60000 });
  await page.fill("#emojis", EMOJIS);
  await page.fill("#pin", pin);
  await page.fill("#nickname", nickname);
  await page.click(create ? "#create" : "#join");
  await page.waitForSelector("#room:not(.hidden)", { timeout: 60000 });
  return page;
}

const profile = mkdtempSync(join(tmpdir(), "sos-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  // 1. create in the browser on A; sosctl reads it decrypted through B
  const page = await enterRoom(context, PIN, true, "web");
  const hash = (await page.textContent("#room-hash")).trim();
  check(/^[0-9a-f]{16}$/.test(hash), "room hash shown: " + hash);
  const joined = await retry("the room on node B",
                             () => ctl("room", "join", hash, "--nickname", "cli"));
  const member = joined.member_id;
  await page.fill("#message", "hello from the browser");
  await page.click("#send");
  const seen = await retry("sosctl to read the browser's message", () => {
    const q = ctl("room", "poll", hash, "--member", member, "--emojis", EMOJIS, "--pin", PIN);
    return q.messages.find((m) => m.text === "hello from the browser");
  });
  check(seen.sender === "web", "sender of the browser's message: " + seen.sender);

  // 2. sosctl sends through B; the page shows it decrypted
  ctl("room", "send", hash, "--member", member, "--emojis", EMOJIS, "--pin", PIN,
      "hello from sosctl");
  await page.waitForSelector(".msg:not(.undecryptable) .text:text-is('hello from sosctl')",
                             { timeout: 60000 });

  // 3. a wrong PIN: the page says the messages cannot be decrypted
  const wrong = await enterRoom(context, "0000", false, "guess");
  await wrong.waitForSelector(".msg.undecryptable", { timeout: 60000 });
  const texts = await wrong.$$eval(".msg .text", (els) => els.map((e) => e.textContent));
  check(texts.length >= 2, "messages shown with the wrong PIN: " + texts.length);
  check(!texts.some((t) => t.includes("hello from")), "plaintext shown with a wrong PIN");
  check(await wrong.$$eval(".msg.undecryptable", (els) => els.length) === texts.length,
        "every message is marked undecryptable");
  // 4. the operator's tab: this node's id, and the workers with their figures, live
  const op = await context.newPage();
  await op.goto(url + "/#node");
  await op.waitForFunction((id) => document.getElementById("node-id").textContent === id,
                           process.env.SOS_NODE_A_ID, { timeout: 30000 });
  await op.waitForFunction(() => document.querySelectorAll("#workers tbody tr").length >= 2,
                           null, { timeout: 30000 });
  const counters = await op.$$eval("#counters tr", (rows) => rows.length);
  check(counters > 10, "counters shown: " + counters);
  console.log("page test: ok (room " + hash + ")");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
