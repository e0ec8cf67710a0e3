import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import express, { type NextFunction, type Request, type RequestHandler, type Response, Router } from "express";
import { loadedOnFirstRequest } from "../src/http/loaded-on-first-request.ts";
import { capturingLogger } from "./helpers/capturing-logger.ts";

/*
 * A part loaded by its first request: loaded once however many requests wait for it, a failed load
 * answered as `unavailable` and tried again by the next request, a handler that throws answered by
 * express's error handler, and a part that does not take the request leaves it to the next route.
 */

/** What each test's part does when loaded: a queue of outcomes, one per load. */
let outcomes: (() => Promise<RequestHandler>)[] = [];
let loads = 0;
const { logger, lines } = capturingLogger();
let base = "";
let close: () => void = () => {};

const part: RequestHandler = Router().get("/part", (_req, res) => void res.json({ answered: "part" }));
const throwing: RequestHandler = () => {
  throw new Error("the part broke as it started");
};

before(async () => {
  const app = express();
  const load = () => {
    loads++;
    const next = outcomes.shift();
    if (!next) throw new Error("no outcome queued for this load");
    return next();
  };
  app.use(loadedOnFirstRequest("the test part", load, logger));
  app.get("/after", (_req, res) => void res.json({ answered: "after" }));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => void res.status(500).json({ handled: (err as Error).message }));
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => server.close();
});
after(() => close());

describe("loadedOnFirstRequest", () => {
  test("a failed load is answered as unavailable and logged; the next request loads it again, once for all that wait", async () => {
    outcomes = [() => Promise.reject(Object.assign(new Error("Cannot find module '/x/api.js'"), { code: "ERR_MODULE_NOT_FOUND" }))];
    const failed = await fetch(`${base}/part`);
    assert.equal(failed.status, 503);
    assert.equal(failed.headers.get("content-type"), "application/problem+json; charset=utf-8");
    const problem = (await failed.json()) as { code: string; detail: string };
    assert.equal(problem.code, "service_unavailable");
    assert.match(problem.detail, /^the test part could not be loaded/);
    const logged = lines.map((l) => JSON.parse(l) as { part?: string; code?: string; msg: string }).find((l) => l.part === "the test part");
    assert.equal(logged?.code, "ERR_MODULE_NOT_FOUND");
    assert.equal(logged?.msg, "loading a part of the gateway failed");

    // Slow enough that all three requests wait for the same load.
    outcomes = [() => new Promise((resolve) => setTimeout(() => resolve(part), 100))];
    const answers = await Promise.all([1, 2, 3].map(() => fetch(`${base}/part`).then((r) => r.json())));
    assert.deepEqual(answers, [1, 2, 3].map(() => ({ answered: "part" })));
    assert.equal(loads, 2, "one failed load, then one for the three requests");

    // Loaded: a request the part has no route for goes on to the routes after it, without a load.
    assert.deepEqual(await (await fetch(`${base}/after`)).json(), { answered: "after" });
    assert.equal(loads, 2);
  });
});

describe("loadedOnFirstRequest, a part that throws", () => {
  test("goes to express's error handler, not out of the process", async () => {
    const app = express();
    app.use(loadedOnFirstRequest("a throwing part", async () => throwing, logger));
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => void res.status(500).json({ handled: (err as Error).message }));
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const answer = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/anything`);
      assert.equal(answer.status, 500);
      assert.deepEqual(await answer.json(), { handled: "the part broke as it started" });
    } finally {
      server.close();
    }
  });
});
