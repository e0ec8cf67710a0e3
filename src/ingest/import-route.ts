import { Router } from "express";
import { z } from "zod";
import { sendProblem } from "../http/problem.ts";
import type { Recorder } from "../ledger/recorder.ts";
import { handleUsagePost, rawUsageBody } from "./usage-route.ts";

const SourceName = z.string().regex(/^[\w.:-]{1,100}$/);

/**
 * Bulk import for operators (`tollgate ingest FILE`): the usage webhook's own reading and
 * validation, with the dedupe namespace named by the caller so a re-run skips what is in.
 */
export function importRouter(recorder: Recorder): Router {
  const router = Router();
  router.post("/usage", rawUsageBody, async (req, res) => {
    const source = SourceName.safeParse(req.query.source ?? "import");
    if (!source.success) return sendProblem(res, "invalid", "source must be 1–100 letters, digits, '.', ':', '_' or '-'");
    await handleUsagePost(req, res, recorder, { source: `ingest:${source.data}`, now: new Date() });
  });
  return router;
}
