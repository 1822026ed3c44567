#!/usr/bin/env bash
# bench/dns.sh: dnsperf against three servers that serve the same names,
# one after another in one run, each pinned to CPU 0 (one thread) with
# the load on CPU 1:
#
#   swarm    dnsd's swarm plugin, from task files
#   hosts    CoreDNS's hosts plugin with loadbalance, in the same dnsd
#   dnsmasq  dnsmasq, from a hosts file
#
# For each it measures the most queries a second it answers for a name of
# ten addresses and for an unknown name (NXDOMAIN), then the latency of
# each query at a fixed, lower rate (p50, p99). It prints the figures and
# the ratios swarm/hosts and swarm/dnsmasq.
#
# Usage: bench/dns.sh            (DURATION=10 RATE=20000 to change)
# Needs: dnsperf dnsmasq (apt-get install dnsperf dnsmasq-base), taskset.
set -euo pipefail

DURATION=${DURATION:-10} # seconds of each throughput run
RATE=${RATE:-20000}      # queries a second of the latency runs
cd "$(dirname "$0")/.."

for tool in dnsperf dnsmasq taskset dig python3; do
	command -v "$tool" >/dev/null || {
		echo "bench/dns.sh: $tool is missing: apt-get install dnsperf dnsmasq-base dnsutils util-linux" >&2
		exit 1
	}
done

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/dnsd" ./dnsd

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# the same ten addresses for web.swarm.internal in every server's format
mkdir "$work/tasks.d"
{
	echo "networks: [{name: frontend, subnet: 10.0.1.0/24}]"
	echo "services:"
	echo "  - name: web"
	echo "    tasks:"
	for i in $(seq 1 10); do echo "      - {slot: $i, addresses: {frontend: 10.0.1.$((10 + i))}}"; done
} >"$work/tasks.d/web.yaml"
for i in $(seq 1 10); do echo "10.0.1.$((10 + i)) web.swarm.internal"; done >"$work/hosts"
echo "web.swarm.internal A" >"$work/q-web"
echo "nope.swarm.internal A" >"$work/q-nx"

start_dnsd() { # name port corefile-body
	printf '.:%s {\n  bind 127.0.0.1\n%s\n}\n' "$2" "$3" >"$work/Corefile.$1"
	GOMAXPROCS=1 taskset -c 0 "$work/dnsd" -conf "$work/Corefile.$1" -quiet >"$work/$1.log" 2>&1 &
	pids+=($!)
}

start_dnsmasq() { # port
	taskset -c 0 dnsmasq -k -C /dev/null -u root -p "$1" --listen-address=127.0.0.1 \
		--bind-interfaces --no-resolv --no-hosts --addn-hosts="$work/hosts" \
		--local=/swarm.internal/ --log-facility=- >"$work/dnsmasq.log" 2>&1 &
	pids+=($!)
}

wait_ready() { # port
	for _ in $(seq 1 100); do
		if dig +time=1 +tries=1 @127.0.0.1 -p "$1" web.swarm.internal +short | grep -q 10.0.1; then
			return 0
		fi
		sleep 0.1
	done
	echo "bench/dns.sh: server on port $1 did not answer" >&2
	exit 1
}

qps() { # port queryfile
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 20 -q 500 2>/dev/null |
		awk '/Queries per second/ { printf "%.0f", $4 }'
}

latency() { # port queryfile -> "p50_us p99_us"
	taskset -c 1 dnsperf -v -s 127.0.0.1 -p "$1" -d "$2" -l 5 -Q "$RATE" 2>/dev/null |
		awk '/^>/ { print $NF * 1e6 }' | sort -n |
		awk '{ v[NR] = $1 } END { printf "%.0f %.0f\n", v[int(NR * 0.50)], v[int(NR * 0.99)] }'
}

declare -A result
measure() { # name port
	for q in web nx; do
		result[$1.$q.qps]=$(qps "$2" "$work/q-$q")
		read -r p50 p99 < <(latency "$2" "$work/q-$q")
		result[$1.$q.p50]=$p50
		result[$1.$q.p99]=$p99
	done
}

port=$(free_port)
start_dnsd swarm "$port" "  swarm {
    tasks $work/tasks.d
  }"
wait_ready "$port"
measure swarm "$port"
kill "${pids[-1]}"

port=$(free_port)
start_dnsd hosts "$port" "  hosts $work/hosts swarm.internal {
    ttl 5
  }
  loadbalance"
wait_ready "$port"
measure hosts "$port"
kill "${pids[-1]}"

port=$(free_port)
start_dnsmasq "$port"
wait_ready "$port"
measure dnsmasq "$port"
kill "${pids[-1]}"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo
echo "dnsperf, ${DURATION}s a run; server on CPU 0 (GOMAXPROCS=1), load on CPU 1;"
echo "latency at $RATE queries/s"
printf '%-26s %10s %10s %10s\n' "" swarm hosts dnsmasq
for q in web nx; do
	label="10-address name"
	[ "$q" = nx ] && label="NXDOMAIN"
	printf '%-26s %10s %10s %10s\n' "$label: queries/s" \
		"${result[swarm.$q.qps]}" "${result[hosts.$q.qps]}" "${result[dnsmasq.$q.qps]}"
	printf '%-26s %10s %10s %10s\n' "$label: p50 µs" \
		"${result[swarm.$q.p50]}" "${result[hosts.$q.p50]}" "${result[dnsmasq.$q.p50]}"
	printf '%-26s %10s %10s %10s\n' "$label: p99 µs" \
		"${result[swarm.$q.p99]}" "${result[hosts.$q.p99]}" "${result[dnsmasq.$q.p99]}"
done
echo
for q in web nx; do
	echo "$q: swarm/hosts queries/s $(ratio "${result[swarm.$q.qps]}" "${result[hosts.$q.qps]}")," \
		"p99 $(ratio "${result[swarm.$q.p99]}" "${result[hosts.$q.p99]}");" \
		"swarm/dnsmasq queries/s $(ratio "${result[swarm.$q.qps]}" "${result[dnsmasq.$q.qps]}")," \
		"p99 $(ratio "${result[swarm.$q.p99]}" "${result[dnsmasq.$q.p99]}")"
done
