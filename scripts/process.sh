# Process helpers shared by scripts/dev and scripts/demo.

# A process that exists and is not a zombie (an exited child nobody reaped; in a container whose
# init does not reap, a stopped server stays one and still answers kill -0).
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}
