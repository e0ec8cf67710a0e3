import { Router } from "express";
import { z } from "zod";
import { sendProblem } from "../http/problem.ts";
import type { Recorder } from "../ledger/recorder.ts";
import { readBody } from "../http/read-body.ts";
import { MAX_BODY_BYTES } from "./usage-body.ts";
import { handleUsagePost, refuse } from "./usage-route.ts";

const SourceName = z.string().regex(/^[\w.:-]{1,100}$/);

/**
 * Bulk import for operators (`tollgate ingest FILE`): the usage webhook's own reading and
 * validation, with the dedupe namespace named by the caller so a re-run skips what is in.
 */
export function importRouter(recorder: Recorder): Router {
  const router = Router();
  // The admin token is checked before this route (adminApi), so the body is read only for an admin.
  router.post("/usage", async (req, res) => {
    const source = SourceName.safeParse(req.query.source ?? "import");
    if (!source.success) return sendProblem(res, "invalid", "source must be 1–100 letters, digits, '.', ':', '_' or '-'");
    const read = await readBody(req, { limit: MAX_BODY_BYTES });
    if (!read.ok) return refuse(res, read);
    await handleUsagePost(req, res, recorder, { source: `ingest:${source.data}`, now: new Date() }, read.body);
  });
  return router;
}
