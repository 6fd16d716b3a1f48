// Drives the official Retraced Node client (@retracedhq/retraced, pinned
// in package.json / package-lock.json) against a running Cairn. Run by
// cmd/cairn's TestRetracedNodeClient with:
//   RETRACED_ENDPOINT=http://127.0.0.1:PORT/auditlog PROJECT_ID=<org> API_KEY=<cairn key>
// Exits non-zero on the first failed check; prints "N passed, 0 failed".
"use strict";
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { Client } = require("@retracedhq/retraced");

const endpoint = process.env.RETRACED_ENDPOINT;
const projectId = process.env.PROJECT_ID;
const apiKey = process.env.API_KEY;
let passed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
}

(async () => {
  const client = new Client({ projectId, apiKey, endpoint, component: "nodetest", version: "0.7.23" });
  const actorId = crypto.randomUUID();
  const group = { id: "customer-" + actorId.slice(0, 8), name: "Customer" };

  await check("reportEvent (hash verified by the client)", async () => {
    const id = await client.reportEvent({
      action: "document.share",
      crud: "u",
      group,
      created: new Date("2024-03-04T05:06:07.890Z"),
      actor: { id: "someone-else", name: "Ann", href: "https://app.example/u/ann" },
      target: { id: "doc-1", name: "Plan", href: "https://app.example/d/1", type: "document" },
      source_ip: "203.0.113.9",
      description: "shared the plan",
      is_failure: false,
      fields: { ";odd=key": "% value: 1", plain: "x" },
      external_id: "ext:1",
      metadata: { "trace:id": "abc=1;2" },
    });
    assert.match(id, /^[0-9a-f]{32}$/);
  });

  await check("reportEvent, anonymous minimal event", async () => {
    const id = await client.reportEvent({ action: "page.view", crud: "r", is_anonymous: true });
    assert.match(id, /^[0-9a-f]{32}$/);
  });

  let bulkIds;
  await check("reportEvents (bulk, hashes verified)", async () => {
    const events = [];
    for (let i = 0; i < 10; i++) {
      events.push({
        action: i % 2 ? "user.login" : "user.logout",
        crud: "c",
        group,
        actor: { id: actorId, name: "Bob Builder" },
        target: { id: "session-" + i },
        fields: { n: String(i) },
        created: new Date(Date.UTC(2024, 0, 1, 0, 0, i)),
      });
    }
    bulkIds = await client.reportEvents(events);
    assert.equal(bulkIds.length, 10);
    assert.equal(new Set(bulkIds).size, 10);
  });

  await check("getViewerToken", async () => {
    const token = await client.getViewerToken(group.id, actorId, true);
    assert.match(token, /^[0-9a-f]{32}$/);
  });

  await check("query with paging and a field mask", async () => {
    const mask = { id: true, action: true, created: true, actor: { id: true, name: true }, fields: true };
    const conn = await client.query({ actor_id: actorId }, mask, 3);
    assert.equal(conn.totalCount, 10);
    assert.equal(conn.totalPages(), 4);
    const seen = [];
    for (;;) {
      for (const e of conn.currentResults) {
        seen.push(e.id);
        assert.deepEqual(Object.keys(e).sort(), ["action", "actor", "created", "fields", "id"]);
        assert.deepEqual(Object.keys(e.actor).sort(), ["id", "name"]);
        assert.equal(e.actor.id, actorId);
        assert.ok(e.created instanceof Date && !isNaN(e.created));
        assert.equal(typeof e.fields.n, "string");
      }
      if (!conn.hasNextPage()) break;
      await conn.nextPage();
    }
    assert.equal(conn.currentPageNumber, 4);
    assert.deepEqual([...seen].sort(), [...bulkIds].sort());
    // Newest first by canonical (created) time.
    assert.equal(conn.totalCount, seen.length);
  });

  await check("query by action and crud, other mask", async () => {
    const mask = { id: true, action: true, crud: true, group: { id: true, name: true }, target: { id: true } };
    const conn = await client.query({ action: "user.login", crud: "c", actor_id: actorId }, mask, 50);
    assert.equal(conn.totalCount, 5);
    for (const e of conn.currentResults) {
      assert.equal(e.action, "user.login");
      assert.equal(e.crud, "c");
      assert.deepEqual(e.group, group);
      assert.deepEqual(Object.keys(e).sort(), ["action", "crud", "group", "id", "target"]);
    }
  });

  await check("query by time range", async () => {
    const conn = await client.query(
      { actor_id: actorId, created_start: new Date(Date.UTC(2024, 0, 1, 0, 0, 5)) },
      { id: true },
      50,
    );
    assert.equal(conn.totalCount, 5);
  });

  console.log(`${passed} passed, 0 failed`);
})();
