-- wrk script: POST the JSON body in $BODY_FILE to the URL under test.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("BODY_FILE"), "r"))
wrk.body = file:read("*a")
file:close()
-- With $AUTHORIZATION set (`Bearer <token>`), every request carries it.
local authorization = os.getenv("AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
