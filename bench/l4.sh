#!/usr/bin/env bash
# bench/l4.sh - lb side by side with HAProxy, NGINX (stream) and a direct
# connection, on loopback.
#
# Each proxy runs alone on CPU 0 (lb with GOMAXPROCS=1, HAProxy with
# nbthread 1, NGINX with one worker); the load generators and backends run
# on CPU 1. Every run is bounded by DUR seconds (default 5); each metric
# is measured ROUNDS times (default 5), the targets taking turns, and the
# median is reported, followed by lb's ratio to HAProxy and NGINX in each
# round, which shows how far the machine's noise moves them. A full run
# takes about 12 minutes.
#
#   bash bench/l4.sh            # from the repository root
#   DUR=10 ROUNDS=3 CONNS=5000 bash bench/l4.sh
#   METRICS="udp cpu" bash bench/l4.sh   # a subset: tput1 tput8 cps cpu p99 udp rss
#
# Reports: iperf3 throughput (1 and 8 streams), new connections/s (wrk,
# Connection: close), proxy CPU per keep-alive request, p99 latency (wrk,
# 4 connections), UDP queries/s through the proxy (dnsperf against
# dnsecho.c, a DNS responder that answers in batches) and proxy CPU per
# query, and RSS with CONNS idle connections. NGINX has two UDP servers:
# one that keeps a session per client as lb does (proxy_timeout 10s), and
# one set up for DNS as NGINX's UDP load-balancing examples set it up
# (proxy_responses 1: a session, and an upstream socket, per query); lb
# is compared with both. Ratios lb/HAProxy and lb/NGINX follow; for CPU,
# latency and RSS lower is better. HAProxy has no UDP proxy here.
#
# The hard limit of 20,000 open files on the development machines caps a
# proxy, which holds two descriptors per connection, below 10,000 idle
# connections: CONNS defaults to 9,900.
set -euo pipefail

DUR=${DUR:-5}
METRICS=${METRICS:-"tput1 tput8 cps cpu p99 udp rss"}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-9900}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# --- tools ------------------------------------------------------------
need=(haproxy nginx iperf3 wrk dnsperf gcc taskset python3 go)
pkgs=(haproxy nginx-light iperf3 wrk dnsperf gcc util-linux python3 golang)
missing=()
for i in "${!need[@]}"; do
	command -v "${need[$i]}" >/dev/null 2>&1 || missing+=("${pkgs[$i]}")
done
if [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
	missing+=(libnginx-mod-stream)
fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "missing tools; install them with:" >&2
	echo "  apt-get install -y ${missing[*]}" >&2
	exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
	echo "need 2 CPUs (proxy on CPU 0, load on CPU 1)" >&2
	exit 1
fi

WORK=$(mktemp -d /tmp/l4bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# --- builds -------------------------------------------------------------
echo "building lb and the helper in $WORK" >&2
(cd "$ROOT" && go build -o "$WORK/lb" ./lb)
mkdir -p "$WORK/helper"
cat >"$WORK/helper/main.go" <<'EOF'
// helper: "ports N" prints N ports free for TCP and UDP on 127.0.0.1;
// "hold ADDR N" opens N TCP connections, prints "ready", and holds them
// until its standard input closes.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

func main() {
	switch os.Args[1] {
	case "ports":
		n, _ := strconv.Atoi(os.Args[2])
		var keep []io.Closer
		for len(keep) < 2*n {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				panic(err)
			}
			pc, err := net.ListenPacket("udp", ln.Addr().String())
			if err != nil {
				ln.Close()
				continue
			}
			keep = append(keep, ln, pc)
			fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		}
		for _, c := range keep {
			c.Close()
		}
	case "hold":
		n, _ := strconv.Atoi(os.Args[3])
		conns := make([]net.Conn, 0, n)
		for i := 0; i < n; i++ {
			c, err := net.Dial("tcp", os.Args[2])
			if err != nil {
				fmt.Println("failed after", i, err)
				os.Exit(1)
			}
			conns = append(conns, c)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		for _, c := range conns {
			c.Close()
		}
	}
}
EOF
(cd "$WORK/helper" && GO111MODULE=off go build -o "$WORK/h" main.go)

mapfile -t P < <("$WORK/h" ports 12)
IPERF=${P[0]} HTTP=${P[1]} DNS=${P[2]}
LB_I=${P[3]} LB_H=${P[4]} LB_U=${P[5]}
HA_I=${P[6]} HA_H=${P[7]}
NG_I=${P[8]} NG_H=${P[9]} NG_U=${P[10]} NG_U1=${P[11]}

# --- backends on CPU 1 ----------------------------------------------------
start_bg() { # start_bg NAME CMD... ; remembers the pid in LASTPID
	"${@:2}" >"$WORK/$1.log" 2>&1 &
	LASTPID=$!
	PIDS+=("$LASTPID")
}
wait_port() { # wait_port PORT: until something listens on 127.0.0.1:PORT
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

start_bg iperf3 taskset -c 1 iperf3 -s -p "$IPERF"

mkdir -p "$WORK/www"
cat >"$WORK/backend.conf" <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/backend.pid;
error_log $WORK/backend-error.log;
events { worker_connections 19000; }
http {
	access_log off;
	keepalive_requests 100000000;
	keepalive_timeout 120s;
	client_header_timeout 120s;
	server {
		listen 127.0.0.1:$HTTP backlog=4096;
		location / { return 200 "hello from the backend\n"; }
	}
}
EOF
start_bg backend taskset -c 1 nginx -p "$WORK" -c "$WORK/backend.conf"

gcc -O2 -o "$WORK/dnsecho" "$ROOT/bench/dnsecho.c"
start_bg dnsecho taskset -c 1 "$WORK/dnsecho" "$DNS"
for _ in $(seq 1000); do echo "bench.test A"; done >"$WORK/queries.txt"

wait_port "$IPERF"
wait_port "$HTTP"

# --- proxies on CPU 0 ---------------------------------------------------
cat >"$WORK/lb.conf" <<EOF
publish 127.0.0.1:$LB_I/tcp {
	upstream 127.0.0.1:$IPERF
}
publish 127.0.0.1:$LB_H/tcp {
	upstream 127.0.0.1:$HTTP
	max_conns 20000
}
publish 127.0.0.1:$LB_U/udp {
	upstream 127.0.0.1:$DNS
}
drain_timeout 1s
EOF
cat >"$WORK/haproxy.cfg" <<EOF
global
	nbthread 1
	maxconn 9990
defaults
	mode tcp
	timeout connect 5s
	timeout client 10m
	timeout server 10m
listen iperf
	bind 127.0.0.1:$HA_I
	server s1 127.0.0.1:$IPERF
listen http
	bind 127.0.0.1:$HA_H
	server s1 127.0.0.1:$HTTP
EOF
cat >"$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 20000; }
stream {
	server { listen 127.0.0.1:$NG_I; proxy_pass 127.0.0.1:$IPERF; proxy_timeout 10m; }
	server { listen 127.0.0.1:$NG_H backlog=4096; proxy_pass 127.0.0.1:$HTTP; proxy_timeout 10m; }
	server { listen 127.0.0.1:$NG_U udp; proxy_pass 127.0.0.1:$DNS; proxy_timeout 10s; }
	# DNS as NGINX's UDP load-balancing examples set it up: a session per query
	server { listen 127.0.0.1:$NG_U1 udp; proxy_pass 127.0.0.1:$DNS; proxy_timeout 1s; proxy_responses 1; }
}
EOF

# --- measurements -------------------------------------------------------
cpu_ticks() { # cpu_ticks PID...: utime+stime summed, in clock ticks
	local t=0 p
	for p in "$@"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
rss_kb() { # rss_kb PID...: VmRSS summed, kB
	local t=0 p
	for p in "$@"; do
		t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
	done
	echo "$t"
}
iperf_gbps() { # iperf_gbps PORT STREAMS
	taskset -c 1 timeout $((DUR + 15)) iperf3 -c 127.0.0.1 -p "$1" -P "$2" -t "$DUR" -J |
		python3 -c 'import json, sys
end = json.load(sys.stdin)["end"]
print("%.2f" % (end["sum_received"]["bits_per_second"] / 1e9))'
}
wrk_run() { # wrk_run PORT CONNS EXTRA...: prints wrk's output
	taskset -c 1 timeout $((DUR + 15)) wrk -t1 -c"$2" -d"${DUR}s" --latency "${@:3}" \
		"http://127.0.0.1:$1/"
}
rps_of() { awk '/^Requests\/sec/ {printf "%.0f", $2}'; }
p99_ms() { # p99 from wrk --latency, in ms
	awk '$1 == "99%" { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v/=1000 }
		else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v*=1000 }
		printf "%.3f", v }'
}
dnsperf_qps() { # dnsperf_qps PORT
	taskset -c 1 timeout $((DUR + 15)) dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries.txt" \
		-l "$DUR" -c 8 -q 128 -T 1 2>&1 | tee "$WORK/dnsperf-$1.log" |
		awk '/Queries per second/ {printf "%.0f", $4}'
}
udp_run() { # udp_run PORT PID...: queries/s, and CPU per query of the PIDs
	local before after qps
	[ "$#" -gt 1 ] && before=$(cpu_ticks "${@:2}")
	qps=$(dnsperf_qps "$1")
	if [ "$#" -eq 1 ]; then echo "$qps -"; return; fi
	after=$(cpu_ticks "${@:2}")
	echo "$qps $(awk -v t=$((after - before)) -v q="$qps" -v d="$DUR" \
		-v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz * 1e6 / (q * d)}')"
}
hold_rss() { # hold_rss PORT PID...: RSS with CONNS idle connections, MB
	local fifo="$WORK/hold.fifo" out="$WORK/hold.out"
	rm -f "$fifo"
	mkfifo "$fifo"
	taskset -c 1 "$WORK/h" hold "127.0.0.1:$1" "$CONNS" <"$fifo" >"$out" 2>&1 &
	local hp=$!
	exec 4>"$fifo"
	for _ in $(seq 600); do
		grep -q -e ready -e failed "$out" 2>/dev/null && break
		sleep 0.1
	done
	if ! grep -q ready "$out"; then
		echo "-"
	else
		sleep 2
		awk -v kb="$(rss_kb "${@:2}")" 'BEGIN {printf "%.1f", kb/1024}'
	fi
	exec 4>&-
	wait "$hp" 2>/dev/null || true
}

# one_run METRIC TARGET: prints one measurement of METRIC for TARGET
one_run() {
	local m=$1 t=$2
	local ip=${PORT_I[$t]} hp=${PORT_H[$t]} up=${PORT_U[$t]}
	local pids=(${PIDS_OF[$t]})
	case $m in
	tput1) iperf_gbps "$ip" 1 ;;
	tput8) iperf_gbps "$ip" 8 ;;
	cps) wrk_run "$hp" 32 -H "Connection: close" | tee -a "$WORK/close-$t.log" | rps_of ;;
	p99) wrk_run "$hp" 4 | tee -a "$WORK/latency-$t.log" | p99_ms ;;
	udp)
		# queries/s and the proxy's CPU per query; for NGINX the same
		# again for its server configured as NGINX's DNS guide does
		if [ -z "$up" ]; then echo "- -"; return; fi
		if [ "$t" = nginx ]; then
			echo "$(udp_run "$up" "${pids[@]}") $(udp_run "$NG_U1" "${pids[@]}")"
		else
			udp_run "$up" "${pids[@]}"
		fi
		;;
	cpu)
		# keep-alive requests; CPU of the proxy per request
		local before after out reqs
		[ "${#pids[@]}" -gt 0 ] && before=$(cpu_ticks "${pids[@]}")
		out=$(wrk_run "$hp" 32)
		echo "$out" >>"$WORK/keepalive-$t.log"
		reqs=$(echo "$out" | awk '/requests in/ {print $1}')
		if [ "${#pids[@]}" -eq 0 ]; then echo -; return; fi
		after=$(cpu_ticks "${pids[@]}")
		awk -v t=$((after - before)) -v r="$reqs" -v hz="$(getconf CLK_TCK)" \
			'BEGIN {printf "%.2f", t / hz * 1e6 / r}'
		;;
	esac
}
median() { # median of the arguments, "-" when any is "-"
	printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} /^-$/ {d=1}
		END { if (d || NR == 0) print "-"; else if (NR % 2) print v[(NR+1)/2];
			else printf "%.2f", (v[NR/2] + v[NR/2+1]) / 2 }'
}

TARGETS=(direct lb haproxy nginx)
declare -A PORT_I PORT_H PORT_U PIDS_OF R RAW
PORT_I=([direct]=$IPERF [lb]=$LB_I [haproxy]=$HA_I [nginx]=$NG_I)
PORT_H=([direct]=$HTTP [lb]=$LB_H [haproxy]=$HA_H [nginx]=$NG_H)
PORT_U=([direct]=$DNS [lb]=$LB_U [haproxy]= [nginx]=$NG_U)

start_bg lb env GOMAXPROCS=1 taskset -c 0 "$WORK/lb" -conf "$WORK/lb.conf" -log-level warn
PIDS_OF[lb]=$LASTPID
start_bg haproxy taskset -c 0 haproxy -f "$WORK/haproxy.cfg"
PIDS_OF[haproxy]=$LASTPID
start_bg nginx taskset -c 0 nginx -p "$WORK" -c "$WORK/nginx.conf"
NGPID=$LASTPID
wait_port "$LB_H"
wait_port "$HA_H"
wait_port "$NG_H"
PIDS_OF[nginx]="$NGPID $(pgrep -P "$NGPID" | tr '\n' ' ')"
PIDS_OF[direct]=

# rounds interleave the targets, so a burst of load from elsewhere on the
# machine hits all of them alike, and each round starts with the next
# target: a run that follows another pays for the sockets that run left in
# TIME_WAIT (the loopback's ephemeral ports and the conntrack table fill
# up), so no target may always go first. The median of the rounds is
# reported.
for m in $METRICS; do
	[ "$m" = rss ] && continue
	declare -A runs=() runs2=() runs3=() runs4=()
	for r in $(seq "$ROUNDS"); do
		k=$(((r - 1) % ${#TARGETS[@]}))
		for t in "${TARGETS[@]:$k}" "${TARGETS[@]:0:$k}"; do
			v=$(one_run "$m" "$t")
			read -r v1 v2 v3 v4 <<<"$v"
			runs[$t]="${runs[$t]:-} $v1"
			runs2[$t]="${runs2[$t]:-} ${v2:--}"
			runs3[$t]="${runs3[$t]:-} ${v3:--}"
			runs4[$t]="${runs4[$t]:-} ${v4:--}"
			echo "$m round $r $t: $v" >&2
		done
	done
	for t in "${TARGETS[@]}"; do
		RAW[$t,$m]=${runs[$t]}
		RAW[$t,${m}1]=${runs3[$t]}
		R[$t,$m]=$(median ${runs[$t]})
		R[$t,${m}2]=$(median ${runs2[$t]})
		R[$t,${m}3]=$(median ${runs3[$t]})
		R[$t,${m}4]=$(median ${runs4[$t]})
	done
	unset runs runs2 runs3 runs4
done
for t in "${TARGETS[@]}"; do
	if [[ " $METRICS " != *" rss "* ]]; then
		R[$t,rss]=-
	elif [ -n "${PIDS_OF[$t]}" ]; then
		R[$t,rss]=$(hold_rss "${PORT_H[$t]}" ${PIDS_OF[$t]})
	else
		R[$t,rss]=-
	fi
	echo "rss $t: ${R[$t,rss]}" >&2
done

# --- report -------------------------------------------------------------
ratio() { # ratio A B
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-";
		else printf "%.2f", a / b }'
}
echo
echo "lb benchmark, $(date -u +%Y-%m-%dT%H:%MZ), DUR=${DUR}s x $ROUNDS rounds (median)," \
	"CONNS=$CONNS, $(nproc) CPUs, load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-32s %10s %10s %10s %10s %9s %9s\n" metric direct lb haproxy nginx lb/hap lb/ngx
row() { # row LABEL KEY
	local d=${R[direct,$2]:--} l=${R[lb,$2]:--} h=${R[haproxy,$2]:--} n=${R[nginx,$2]:--}
	printf "%-32s %10s %10s %10s %10s %9s %9s\n" "$1" "$d" "$l" "$h" "$n" \
		"$(ratio "$l" "$h")" "$(ratio "$l" "$n")"
}
row "iperf3 1 stream (Gbit/s)" tput1
row "iperf3 8 streams (Gbit/s)" tput8
row "new conns/s (wrk, close)" cps
row "proxy CPU/keep-alive req (us)" cpu
row "p99 latency, 4 conns (ms)" p99
row "UDP dnsperf (queries/s)" udp
row "proxy CPU/UDP query (us)" udp2
# lb against NGINX's second UDP server (proxy_responses 1)
R[nginx,udp1]=${R[nginx,udp3]:--} R[lb,udp1]=${R[lb,udp]:--}
RAW[lb,udp1]=${RAW[lb,udp]:-}
R[nginx,udp1c]=${R[nginx,udp4]:--} R[lb,udp1c]=${R[lb,udp2]:--}
row "UDP q/s, NGINX one reply/session" udp1
row "CPU/UDP query, same (us)" udp1c
row "RSS, $CONNS idle conns (MB)" rss

# lb's ratio in each round, in round order: a median near 1.0 is only as
# firm as the rounds around it
per_round() { # per_round LABEL METRIC PEER
	local l=(${RAW[lb,$2]:-}) p=(${RAW[$3,$2]:-}) out="" i
	[ "${#l[@]}" -eq 0 ] || [ "${#p[@]}" -eq 0 ] && return 0
	for i in "${!l[@]}"; do out="$out $(ratio "${l[$i]}" "${p[$i]:--}")"; done
	[[ "$out" =~ [0-9] ]] || return 0
	printf "%-32s %s\n" "$1" "$out"
}
echo
echo "per round, lb/HAProxy:"
per_round "iperf3 1 stream" tput1 haproxy
per_round "iperf3 8 streams" tput8 haproxy
per_round "new conns/s" cps haproxy
per_round "proxy CPU/keep-alive req" cpu haproxy
per_round "p99 latency" p99 haproxy
echo "per round, lb/NGINX:"
per_round "UDP dnsperf" udp nginx
per_round "UDP, NGINX one reply/session" udp1 nginx
