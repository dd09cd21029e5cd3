-- wrk script: POST a small OpenAI chat completion and print a JSON summary line at the end.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local key = os.getenv("WARDEN_BENCH_KEY")
if not key or key == "" then key = "sk-bench" end
wrk.headers["authorization"] = "Bearer " .. key
wrk.body = os.getenv("WARDEN_BENCH_BODY") or
  '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in five words."}]}'
local scenario = os.getenv("WARDEN_BENCH_SCENARIO")
if scenario and scenario ~= "" then
  wrk.headers["x-mock-scenario"] = scenario
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, errors,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.mean))
end
