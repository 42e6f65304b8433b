-- wrk script: POST, in turn, each JSON body of $BODIES_FILE (one per line), and count the
-- answers that are not a 200 or that carry GraphQL errors; `done` prints the counts.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for line in io.lines(os.getenv("BODIES_FILE")) do
  if line ~= "" then bodies[#bodies + 1] = line end
end
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  sent, bad = 0, 0
end

function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, bodies[(sent % #bodies) + 1])
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("bad")
  end
  io.write(string.format("answers with errors: %d\n", total))
end
