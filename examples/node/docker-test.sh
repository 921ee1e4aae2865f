#!/usr/bin/env bash
# docker-test.sh: the three-node cluster of docker-compose.yml, for real.
#
# Builds examples/node as a static binary, puts it in the FROM-scratch image
# of ./Dockerfile, starts the compose cluster under a project name of its own
# and checks it through the HTTP API (published on 127.0.0.1, free ports):
#   1. formation: every node ready, the 3 members, one leader, every
#      partition with a primary that is a member, the same ETag everywhere;
#   2. failure: one non-bootstrap, non-leader container killed (SIGKILL) is
#      detected and removed (NodeLeave, health_check_failure) and no
#      partition names it any more;
#   3. rejoin: that container started again on its volume is a member again,
#      ready, agrees with the others, and NodeRejoin was emitted.
# After the formation and again after the rejoin, Docker must report every
# container "healthy": the image's HEALTHCHECK (`node probe`, GET /ready from
# inside the container) agrees with what the API said from outside.
# It prints the three timings and when each health check passed. Everything it created (containers, network,
# volumes, image, build directory) is removed on exit, whatever happens.
#
# Without a working Docker engine or a compose tool it says so and exits 0,
# so CI can call it anywhere. With Docker it needs Go and curl.
#
# DOCKER_TEST_KEEP=1 keeps the cluster after a failure, for a look (the
# command that removes it is printed); DOCKER_TEST_VERBOSE=1 prints what each
# wait is waiting for, as it changes.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly compose_file=examples/node/docker-compose.yml
readonly token=docker-test-token
# Bounds, in seconds. Formation includes node-2/3 retrying their join until
# node-1 answers; detection takes about 2.5 s with the default health check.
# Docker runs a HEALTHCHECK every 5 s (the Dockerfile's interval), the first
# one 5 s after the start: a healthy status takes up to about 10 s after ready.
# "up" itself waits until node-1 is healthy (node-2 and node-3 depend on it):
# compose_timeout bounds that and every other compose call.
readonly formation_timeout=60 detection_timeout=30 rejoin_timeout=60 event_timeout=10 health_timeout=30
readonly compose_timeout=150

log() { printf '[docker-test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# now_ms prints the wall clock in milliseconds.
now_ms() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME//[.,]/}
		echo $((10#$t / 1000))
	else
		echo $(($(date +%s) * 1000))
	fi
}

# bounded SECONDS COMMAND... runs COMMAND with a time limit (when timeout(1)
# exists), so that no docker or compose call can hang the script.
bounded() {
	local secs=$1
	shift
	if command -v timeout >/dev/null 2>&1; then
		timeout "$secs" "$@"
	else
		"$@"
	fi
}

# ---- 1. skip without an engine or a compose tool -----------------------------

if ! command -v docker >/dev/null 2>&1; then
	log "SKIPPED: no docker command"
	exit 0
fi
if ! bounded 30 docker info >/dev/null 2>&1; then
	log "SKIPPED: no working Docker engine ('docker info' fails)"
	exit 0
fi
if bounded 30 docker compose version >/dev/null 2>&1; then
	compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	compose_cmd=(docker-compose)
else
	log "SKIPPED: neither 'docker compose' nor 'docker-compose' is installed"
	exit 0
fi
for tool in go curl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		log "FAIL: Docker is here but $tool is not; install $tool (the test skips only without Docker)"
		exit 1
	fi
done

project="ckdt-$$-$RANDOM"
image="clusterkit-node:$project"
ctx=""
failed=0

# compose runs the compose tool on this run's project: its own image, token,
# and every node published on a free port of 127.0.0.1.
compose() {
	bounded "$compose_timeout" env CLUSTERKIT_IMAGE="$image" CLUSTERKIT_AUTH_TOKEN="$token" \
		CLUSTERKIT_NODE1_PORT=127.0.0.1: CLUSTERKIT_NODE2_PORT=127.0.0.1: CLUSTERKIT_NODE3_PORT=127.0.0.1: \
		"${compose_cmd[@]}" -p "$project" -f "$compose_file" "$@"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$failed" = 1 ] && [ "${DOCKER_TEST_KEEP:-}" = 1 ]; then
		log "kept; remove with: CLUSTERKIT_IMAGE=$image ${compose_cmd[*]} -p $project -f $compose_file down -v && docker rmi $image"
	else
		compose down -v --remove-orphans --timeout 5 >/dev/null 2>&1 ||
			log "warning: '${compose_cmd[*]} -p $project down -v' failed: remove the project's containers and volumes by hand"
		docker rmi "$image" >/dev/null 2>&1 || true
	fi
	if [ -n "$ctx" ]; then rm -rf "$ctx"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fail prints the reason, the containers and their last log lines, and exits.
fail() {
	failed=1
	log "FAIL: $*"
	compose ps 2>&1 || true
	local svc
	for svc in node-1 node-2 node-3; do
		echo "---- last log lines of $svc"
		compose logs --no-color --tail 30 "$svc" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' || true
		echo "---- health of $svc: $(health "$svc")"
		health_output "$svc" | tail -n 3 || true
	done
	exit 1
}

# ---- Docker's health status ---------------------------------------------------

# container SERVICE prints the ID of SERVICE's container, found once and kept
# in ctr_<service> (docker start keeps the ID). Like addr, only a call in
# this shell keeps it.
container() {
	local var="ctr_${1//-/_}" id
	if [ -z "${!var:-}" ]; then
		id=$(compose ps -q "$1" 2>/dev/null | head -n 1 | tr -d '\r') || return 1
		[ -n "$id" ] || return 1
		printf -v "$var" '%s' "$id"
	fi
	echo "${!var}"
}

# health SERVICE prints what Docker says of SERVICE's health: starting,
# healthy, unhealthy, "none" for an image without HEALTHCHECK, or "?".
health() {
	local id
	id=$(container "$1" 2>/dev/null) || { echo "?"; return 0; }
	bounded 30 docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null || echo "?"
}

# health_output SERVICE prints the output of SERVICE's recent health checks
# (what `node probe` printed), oldest first.
health_output() {
	local id
	id=$(container "$1" 2>/dev/null) || return 0
	bounded 30 docker inspect --format '{{if .State.Health}}{{range .State.Health.Log}}{{printf "%q" .Output}}{{"\n"}}{{end}}{{end}}' "$id" 2>/dev/null || true
}

# healthy SERVICE...: Docker reports every one of them healthy.
healthy() {
	local svc st
	for svc in "$@"; do
		st=$(health "$svc")
		if [ "$st" != healthy ]; then
			why="$svc is $st (last check: $(health_output "$svc" | tail -n 1))"
			return 1
		fi
	done
}

# ---- HTTP helpers ------------------------------------------------------------
# The gateway writes indented JSON, one key per line; these read keys wherever
# they are (no jq). Node and partition IDs cannot contain quotes.

# addr SERVICE prints 127.0.0.1:<the host port of SERVICE's 8080>, found
# once and kept in port_<service> (no associative array: bash 3.2 works).
# Only a call in this shell keeps it, not one in $(...): agreed makes one.
addr() {
	local var="port_${1//-/_}" p
	if [ -z "${!var:-}" ]; then
		p=$(compose port "$1" 8080 2>/dev/null | tail -n 1 | tr -d '\r') || return 1
		p=${p##*:}
		case "$p" in
		'' | 0 | *[!0-9]*) return 1 ;;
		esac
		printf -v "$var" '127.0.0.1:%s' "$p"
	fi
	echo "${!var}"
}
# forget_addr SERVICE drops the kept port: it changes when the container restarts.
forget_addr() { unset "port_${1//-/_}"; }

# get SERVICE PATH prints the body of a 200 answer; fails on anything else.
get() { curl -sf --max-time 3 "http://$(addr "$1")$2"; }

# json_strings KEY prints the string values of KEY in the JSON on stdin.
json_strings() { grep -o "\"$1\": *\"[^\"]*\"" | sed 's/.*: *"\(.*\)"$/\1/' || true; }
# json_values prints every string value (keys left out) in the JSON on stdin.
json_values() { sed 's/"[^"]*" *://g' | grep -o '"[^"]*"' | tr -d '"' || true; }
# json_number KEY prints the first number value of KEY in the JSON on stdin.
json_number() { grep -o "\"$1\": *[0-9][0-9]*" | head -n 1 | sed 's/.*: *//' || true; }
# count_lines prints how many non-empty lines are on stdin.
count_lines() { grep -c . || true; }

# etag SERVICE PATH prints the ETag header of a GET.
etag() { curl -s --max-time 3 -o /dev/null -D - "http://$(addr "$1")$2" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' || true; }

# events SERVICE KINDS prints the data lines of SERVICE's event stream, from
# the oldest event it retains. The stream stays open: it is read for 1 s.
events() { curl -s -N --max-time 1 "http://$(addr "$1")/events?since=0&kinds=$2" | sed -n 's/^data: //p' || true; }

# ---- the agreement check -----------------------------------------------------

why="" # why the last check failed

# agreed SERVICE...: the services are the members, and each of them is ready,
# lists exactly them (all active), knows the same leader (one of them), holds a table whose
# every partition has a member as primary and which names no other node, and
# reports the same ETag (state version) as the others.
agreed() {
	local want got svc body t n p leader="" tag="" total primaries
	want=" $(printf '%s\n' "$@" | sort | tr '\n' ' ')"
	for svc in "$@"; do
		if ! addr "$svc" >/dev/null; then
			why="$svc: no published port yet"
			return 1
		fi
		if ! body=$(get "$svc" /ready); then
			why="$svc: /ready is not 200: $(curl -s --max-time 3 "http://$(addr "$svc")/ready" | tr -d '\n' | tr -s ' ' | head -c 300)"
			forget_addr "$svc" # maybe a stale port: find it again
			return 1
		fi
		body=$(get "$svc" '/nodes?limit=1000') || { why="$svc: GET /nodes failed"; return 1; }
		got=" $(json_strings id <<<"$body" | sort | tr '\n' ' ')"
		if [ "$got" != "$want" ]; then
			why="$svc lists the members [$got], want [$want]"
			return 1
		fi
		t=$(json_strings status <<<"$body" | grep -vx active | head -n 1) || true
		if [ -n "$t" ]; then
			why="$svc: a member is $t, not active"
			return 1
		fi
		body=$(get "$svc" /consensus/leader) || { why="$svc knows no leader"; return 1; }
		t=$(json_strings leader_id <<<"$body")
		if [ -z "$t" ] || [[ "$want" != *" $t "* ]]; then
			why="$svc: the leader '$t' is not a member"
			return 1
		fi
		if [ -n "$leader" ] && [ "$t" != "$leader" ]; then
			why="the leaders disagree: $leader and $t"
			return 1
		fi
		leader=$t
		body=$(get "$svc" '/partitions?limit=1000') || { why="$svc: GET /partitions failed"; return 1; }
		total=$(json_number total <<<"$body")
		primaries=$(json_strings primary_node <<<"$body")
		n=$(count_lines <<<"$primaries")
		if [ -z "$total" ] || [ "$total" -lt 1 ] || [ "$n" != "$total" ]; then
			why="$svc: $n primaries for ${total:-?} partitions"
			return 1
		fi
		while IFS= read -r p; do
			if [[ "$want" != *" $p "* ]]; then
				why="$svc: $p is a primary and not a member"
				return 1
			fi
		done < <(sort -u <<<"$primaries")
		# Every other string value is a node: a primary or a replica (the
		# ids of partitions and owners and the owners' states left out).
		while IFS= read -r p; do
			if [[ "$want" != *" $p "* ]]; then
				why="$svc: the table names $p, not a member"
				return 1
			fi
		done < <(grep -v '"\(id\|state\)": *"' <<<"$body" | json_values | sort -u)
		t=$(etag "$svc" /cluster)
		if [ -z "$t" ]; then
			why="$svc: /cluster has no ETag"
			return 1
		fi
		if [ -n "$tag" ] && [ "$t" != "$tag" ]; then
			why="the ETags disagree: $tag and $t"
			return 1
		fi
		tag=$t
	done
	agreed_leader=$leader agreed_etag=$tag agreed_partitions=$total
}

# wait_for SECONDS WHAT COMMAND... polls COMMAND every 0.2 s until it
# succeeds, or fails the test with WHAT and the last reason.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$(($(now_ms) + secs * 1000)) last=""
	why=""
	until "$@"; do
		if [ "${DOCKER_TEST_VERBOSE:-}" = 1 ] && [ "$why" != "$last" ]; then
			log "  waiting: $why"
			last=$why
		fi
		if [ "$(now_ms)" -ge "$deadline" ]; then
			fail "$what: not done after ${secs} s (${why:-no reason recorded})"
		fi
		sleep 0.2
	done
}

# ---- 2. build ----------------------------------------------------------------

ctx=$(mktemp -d)
mkdir "$ctx/data" # becomes /data, owned by the image's user
log "building the static binary and image $image"
t0=$(now_ms)
bounded 300 env CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/node" ./examples/node ||
	fail "go build ./examples/node failed"
if ! out=$(bounded 120 docker build -q -t "$image" -f examples/node/Dockerfile "$ctx" 2>&1); then
	echo "$out"
	fail "docker build failed"
fi
log "built in $(($(now_ms) - t0)) ms; running with ${compose_cmd[*]}, project $project"

# ---- 3. up -------------------------------------------------------------------

t0=$(now_ms)
if ! out=$(compose up -d 2>&1); then
	echo "$out"
	fail "'${compose_cmd[*]} up -d' failed"
fi

# ---- 4. formation ------------------------------------------------------------

up_ms=$(($(now_ms) - t0))
for svc in node-1 node-2 node-3; do
	container "$svc" >/dev/null || fail "no container for $svc after 'up'"
done
log "'up' returned after $up_ms ms (it waits until node-1 is healthy); node-1 is $(health node-1)"
wait_for "$formation_timeout" "formation of node-1, node-2, node-3" agreed node-1 node-2 node-3
formation_ms=$(($(now_ms) - t0))
log "formed in $formation_ms ms (from 'up'): 3 members, leader $agreed_leader, $agreed_partitions partitions, ETag $agreed_etag on all"
wait_for "$health_timeout" "Docker health of node-1, node-2, node-3 after the formation" healthy node-1 node-2 node-3
health_ms=$(($(now_ms) - t0))
log "Docker reports all three healthy $health_ms ms after 'up'"

# Joiners start as Raft non-voters and are promoted once healthy for the
# voter stabilisation window (2 s): killing one before that could take the
# quorum with it, as in production. Wait for three voters.
voters() {
	local n
	n=$(get node-1 '/nodes?limit=1000' | grep -c '"voter": *true') || true
	[ "$n" = 3 ] || { why="$n voters, want 3"; return 1; }
}
wait_for "$formation_timeout" "three voters" voters
log "all three nodes are Raft voters $(($(now_ms) - t0)) ms after 'up'"

# ---- 5. kill a non-bootstrap follower ----------------------------------------

victim=node-3
if [ "$agreed_leader" = node-3 ]; then victim=node-2; fi
survivors=()
for svc in node-1 node-2 node-3; do
	if [ "$svc" != "$victim" ]; then survivors+=("$svc"); fi
done
old_addr=$(get node-1 "/nodes/$victim" | json_strings ip | head -n 1) || true

# node-1 bootstrapped the cluster and is never stopped, so its event log
# holds the whole history (GET /events?since=0).
left() {
	events node-1 node_leave | grep "\"id\": *\"$victim\"" | grep -q health_check_failure ||
		{ why="no NodeLeave (health_check_failure) for $victim in node-1's /events"; return 1; }
}
rejoin_event() {
	events node-1 node_rejoin | grep -q "\"id\": *\"$victim\"" ||
		{ why="no NodeRejoin for $victim in node-1's /events"; return 1; }
}

# docker itself, not compose, kills and starts it: compose's start-up time
# would count in the timings.
cid=$(compose ps -q "$victim" 2>/dev/null | head -n 1) || true
[ -n "$cid" ] || fail "no container for $victim"
log "killing $victim with SIGKILL (the leader is $agreed_leader)"
t0=$(now_ms)
bounded 30 docker kill --signal KILL "$cid" >/dev/null || fail "could not kill $victim"
wait_for "$detection_timeout" "removal of $victim and rebalance" agreed "${survivors[@]}"
detection_ms=$(($(now_ms) - t0))
wait_for "$event_timeout" "NodeLeave of $victim" left
log "detected, removed and rebalanced in $detection_ms ms: ${survivors[*]} agree (ETag $agreed_etag), no partition names $victim, NodeLeave health_check_failure"

# ---- 6. rejoin ---------------------------------------------------------------

log "starting $victim again on its volume"
t0=$(now_ms)
bounded 30 docker start "$cid" >/dev/null || fail "could not start $victim"
forget_addr "$victim" # published on a new host port now
wait_for "$rejoin_timeout" "rejoin of $victim" agreed node-1 node-2 node-3
rejoin_ms=$(($(now_ms) - t0))
wait_for "$event_timeout" "NodeRejoin of $victim" rejoin_event
new_addr=$(get node-1 "/nodes/$victim" | json_strings ip | head -n 1) || true
log "rejoined in $rejoin_ms ms: 3 members ready, leader $agreed_leader, ETag $agreed_etag on all, NodeRejoin ($victim advertised ${old_addr:-?}, now ${new_addr:-?})"
wait_for "$health_timeout" "Docker health of node-1, node-2, node-3 after the rejoin" healthy node-1 node-2 node-3
rehealth_ms=$(($(now_ms) - t0))
log "Docker reports all three healthy again $rehealth_ms ms after starting $victim"

# ---- 7. summary --------------------------------------------------------------

echo "docker-test: OK with ${compose_cmd[*]}: formation ${formation_ms} ms, detection ${detection_ms} ms, rejoin ${rejoin_ms} ms; all healthy ${health_ms} ms after up, ${rehealth_ms} ms after the restart"
