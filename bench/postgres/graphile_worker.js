// A graphile-worker process for bench/postgres.sh, in step with
// `pg_bench race`: it migrates, says `ready`, starts working on a `go`
// line, and stops when stdin closes, saying how many jobs it ran.
//
//   DATABASE_URL=... node graphile_worker.js default|fast
//
// default: the library's defaults, but 24 jobs at once and a pool of 25
//          (its default is 1 job at a time; 24 is what its own perfTest uses)
// fast:    the same, with its batching on, as its performance page and
//          perfTest/graphile.config.js set it: localQueue.size 500,
//          completeJobBatchDelay 0, failJobBatchDelay 0
"use strict";
const { run, runMigrations } = require("graphile-worker");
const readline = require("readline");

const mode = process.argv[2] || "default";
const concurrentJobs = Number(process.env.GW_CONCURRENCY || 24);
const worker = {
  connectionString: process.env.DATABASE_URL,
  concurrentJobs,
  maxPoolSize: concurrentJobs + 1,
};
if (mode === "fast") {
  worker.localQueue = { size: 500 };
  worker.completeJobBatchDelay = 0;
  worker.failJobBatchDelay = 0;
} else if (mode !== "default") {
  throw new Error(`unknown mode ${mode}`);
}
let ran = 0;
const options = {
  preset: { worker },
  taskList: {
    trivial: async () => {
      ran += 1;
    },
  },
  crontab: "",
  noHandleSignals: true,
};

async function main() {
  await runMigrations(options);
  console.log("ready");
  const lines = readline.createInterface({ input: process.stdin });
  let runner = null;
  lines.on("line", (line) => {
    if (line === "go" && runner === null) {
      runner = run(options);
    }
  });
  lines.on("close", async () => {
    if (runner !== null) {
      await (await runner).stop();
    }
    console.log(`ran=${ran}`);
    process.exit(0);
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
