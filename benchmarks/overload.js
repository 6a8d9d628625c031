// k6 script for bench_service's overload step: open loop (`constant-arrival-rate`), RATE requests
// per second for SECONDS, each started on schedule whether or not earlier ones were answered, each
// POST {"customer_id": ...} to TARGET_URL for the next customer in IDS_FILE (one id per line; the
// scenario's global iteration number picks it, so ids rotate over all customers and none repeats
// before all have been asked). VUS virtual users are allocated before the start (k6 may add up to
// MAX_VUS); an iteration that finds none free is dropped and counted in `dropped_iterations`. A
// request unanswered after TIMEOUT (default 10s) counts as status 0.
// Requests are counted by status (0: no answer), with the latency of 200s and of 429s; the summary
// is written as JSON to SUMMARY_FILE and nothing to stdout.
import exec from "k6/execution";
import { SharedArray } from "k6/data";
import http from "k6/http";

const ids = new SharedArray("ids", () =>
  open(__ENV.IDS_FILE)
    .split("\n")
    .filter((line) => line.length > 0),
);
const url = __ENV.TARGET_URL;
const params = {
  headers: { "Content-Type": "application/json" },
  timeout: __ENV.TIMEOUT || "10s",
  responseType: "none",
  responseCallback: http.expectedStatuses(200, 429),
};

// Statuses counted apart (a threshold that always holds makes k6 keep a tagged submetric); any
// other status still counts in `http_reqs`, so `requests` minus these is "other (unlisted)".
const STATUSES = [200, 429, 0, 400, 401, 403, 404, 408, 413, 500, 502, 503, 504];
const thresholds = {};
for (const status of STATUSES) {
  thresholds[`http_reqs{status:${status}}`] = ["count>=0"];
}
thresholds["http_req_duration{status:200}"] = ["max>=0"];
thresholds["http_req_duration{status:429}"] = ["max>=0"];

export const options = {
  scenarios: {
    overload: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE),
      timeUnit: "1s",
      duration: `${__ENV.SECONDS}s`,
      preAllocatedVUs: Number(__ENV.VUS),
      maxVUs: Number(__ENV.MAX_VUS || __ENV.VUS),
      gracefulStop: "10s",
    },
  },
  thresholds: thresholds,
  summaryTrendStats: ["med", "p(90)", "p(99)", "max"],
  discardResponseBodies: true,
};

export default function () {
  const id = ids[exec.scenario.iterationInTest % ids.length];
  http.post(url, JSON.stringify({ customer_id: id }), params);
}

export function handleSummary(data) {
  const value = (name, field) => (data.metrics[name] ? data.metrics[name].values[field] : 0);
  const statuses = {};
  for (const status of STATUSES) {
    const count = value(`http_reqs{status:${status}}`, "count");
    if (count > 0) {
      statuses[status] = count;
    }
  }
  const latency = (status) => {
    const name = `http_req_duration{status:${status}}`;
    return data.metrics[name] && value(name, "max") > 0
      ? {
          p50_ms: value(name, "med"),
          p90_ms: value(name, "p(90)"),
          p99_ms: value(name, "p(99)"),
          max_ms: value(name, "max"),
        }
      : null;
  };
  const summary = {
    requests: value("http_reqs", "count"),
    statuses: statuses,
    dropped_iterations: value("dropped_iterations", "count"),
    vus_max: value("vus_max", "max"),
    test_run_ms: data.state.testRunDurationMs,
    served_latency: latency(200),
    shed_latency: latency(429),
  };
  return { [__ENV.SUMMARY_FILE]: JSON.stringify(summary, null, 1) };
}
