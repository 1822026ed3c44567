package taskfile

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// head defines the networks most cases use, on lines 1 to 5.
const head = `networks:
  - name: frontend
    subnets: [10.0.1.0/24, "fd00:1::/64"]
  - name: backend
    subnet: 10.0.2.0/24
`

// problem is one expected problem: where, and a part of its reason.
type problem struct {
	pos  string
	text string
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []problem
	}{
		{
			name: "yaml syntax",
			in:   "services:\n  - name: web\n   ports: []\n",
			want: []problem{{"2:3", "yaml syntax: did not find expected '-' indicator"}},
		},
		{
			name: "yaml syntax in the scanner",
			in:   "services:\n  - name: 'web\n",
			want: []problem{{"2:3", "yaml syntax: found unexpected end of stream"}},
		},
		{
			name: "tab indentation",
			in:   "services: []\n\tnetworks: []\n",
			want: []problem{{"2:2", "yaml syntax: found character that cannot start any token"}},
		},
		{
			name: "invalid utf-8",
			in:   "services:\n  - name: w\xffb\n",
			want: []problem{{"2:12", "invalid UTF-8 byte 0xff"}},
		},
		{
			name: "control character",
			in:   "services:\n  - name: \x01web\n",
			want: []problem{{"2:11", "control character U+0001"}},
		},
		{
			name: "unknown anchor",
			in:   head + "services: *nope\n",
			want: []problem{{"6:11", "unknown anchor 'nope' referenced"}},
		},
		{
			name: "second document",
			in:   head + "---\nservices: []\n",
			want: []problem{{"6:1", "one YAML document"}},
		},
		{
			name: "top level is a list",
			in:   "- name: web\n",
			want: []problem{{"1:1", "task file: want a mapping, got a list"}},
		},
		{
			name: "unknown top-level key",
			in:   "networkz: []\n",
			want: []problem{{"1:1", `unknown key "networkz" in task file (want version, ` +
				"networks, services)"}},
		},
		{
			name: "key in the wrong case",
			in:   "Services: []\n",
			want: []problem{{"1:1", `did you mean "services"?`}},
		},
		{
			name: "repeated key",
			in:   head + "services: []\nservices: []\n",
			want: []problem{{"7:1", `key "services" repeated (first at 6:1)`}},
		},
		{
			name: "merge key",
			in:   head + "services:\n  - <<: {name: web}\n",
			want: []problem{
				{"7:5", "merge keys (<<) are not supported"},
				{"7:5", "service: missing name"},
			},
		},
		{
			name: "unsupported version",
			in:   "version: 2\n",
			want: []problem{{"1:10", `unsupported version "2" (want 1)`}},
		},
		{
			name: "networks is not a list",
			in:   "networks: {name: frontend}\n",
			want: []problem{{"1:11", "networks: want a list, got a mapping"}},
		},
		{
			name: "network item is empty",
			in:   "networks:\n  -\n",
			want: []problem{{"2:4", "network: want a mapping, got nothing"}},
		},
		{
			name: "unknown network key",
			in:   "networks:\n  - {name: frontend, subnet: 10.0.1.0/24, driver: overlay}\n",
			want: []problem{{"2:43", `unknown key "driver" in network`}},
		},
		{
			name: "network without name",
			in:   "networks:\n  - subnet: 10.0.1.0/24\n",
			want: []problem{{"2:5", "network: missing name"}},
		},
		{
			name: "network with null name",
			in:   "networks:\n  - {name: ~, subnet: 10.0.1.0/24}\n",
			want: []problem{{"2:6", "network: missing name"}},
		},
		{
			name: "network name not a label",
			in:   "networks:\n  - {name: front_end, subnet: 10.0.1.0/24}\n",
			want: []problem{{"2:12", `network name "front_end" is not a DNS label: ` +
				`it holds '_'`}},
		},
		{
			name: "network name too long",
			in: "networks:\n  - {name: " + strings.Repeat("a", 64) +
				", subnet: 10.0.1.0/24}\n",
			want: []problem{{"2:12", "64 characters long, more than 63"}},
		},
		{
			name: "network name with a leading hyphen",
			in:   "networks:\n  - {name: -front, subnet: 10.0.1.0/24}\n",
			want: []problem{{"2:12", "starts or ends with a hyphen"}},
		},
		{
			name: "empty network name",
			in:   "networks:\n  - {name: '', subnet: 10.0.1.0/24}\n",
			want: []problem{{"2:12", "it is empty"}},
		},
		{
			name: "duplicate network",
			in:   head + "  - {name: FrontEnd, subnet: 10.0.3.0/24}\n",
			want: []problem{{"6:12", `network "frontend" already defined at 2:11`}},
		},
		{
			name: "missing subnet",
			in:   "networks:\n  - name: frontend\n",
			want: []problem{{"2:5", `network "frontend": missing subnet`}},
		},
		{
			name: "subnet and subnets",
			in:   "networks:\n  - {name: f, subnet: 10.0.1.0/24, subnets: [10.0.2.0/24]}\n",
			want: []problem{{"2:36", "give subnet or subnets, not both"}},
		},
		{
			name: "bad prefix",
			in:   "networks:\n  - {name: f, subnet: 10.0.1.0/33}\n",
			want: []problem{{"2:23", "bad subnet: netip.ParsePrefix"}},
		},
		{
			name: "prefix without length",
			in:   "networks:\n  - {name: f, subnet: 10.0.1.0}\n",
			want: []problem{{"2:23", "bad subnet"}},
		},
		{
			name: "prefix with host bits",
			in:   "networks:\n  - {name: f, subnets: [10.0.1.0/24, \"fd00:1::1/64\"]}\n",
			want: []problem{{"2:38", "subnet fd00:1::1/64 has host bits set (the network " +
				"is fd00:1::/64)"}},
		},
		{
			name: "ipv4-mapped prefix",
			in:   "networks:\n  - {name: f, subnet: \"::ffff:10.0.1.0/120\"}\n",
			want: []problem{{"2:23", "IPv4-mapped"}},
		},
		{
			name: "subnet listed twice",
			in:   "networks:\n  - {name: f, subnets: [10.0.1.0/24, 10.0.1.0/24]}\n",
			want: []problem{{"2:38", "subnet 10.0.1.0/24 listed twice"}},
		},
		{
			name: "service without name",
			in:   head + "services:\n  - tasks: []\n",
			want: []problem{{"7:5", "service: missing name"}},
		},
		{
			name: "service name not a label",
			in:   head + "services:\n  - name: web.1\n",
			want: []problem{{"7:11", `service name "web.1" is not a DNS label: it holds '.'`}},
		},
		{
			name: "duplicate service",
			in:   head + "services:\n  - name: web\n  - name: WEB\n",
			want: []problem{{"8:11", `service "web" already defined at 7:11`}},
		},
		{
			name: "unknown service key",
			in:   head + "services:\n  - name: web\n    replicas: 3\n",
			want: []problem{{"8:5", `unknown key "replicas" in service (want name, ` +
				"endpoint_mode, virtual_ips, networks, ports, tasks)"}},
		},
		{
			name: "bad endpoint mode",
			in:   head + "services:\n  - {name: web, endpoint_mode: ingress}\n",
			want: []problem{{"7:32", `unknown endpoint mode "ingress" (want dnsrr or vip)`}},
		},
		{
			name: "virtual ips in dnsrr mode",
			in:   head + "services:\n  - {name: web, virtual_ips: {frontend: 10.0.1.2}}\n",
			want: []problem{{"7:17", "endpoint_mode dnsrr; virtual IPs need vip"}},
		},
		{
			name: "virtual ip outside the subnet",
			in: head + "services:\n  - {name: web, endpoint_mode: vip, " +
				"virtual_ips: {frontend: 10.0.2.2}}\n",
			want: []problem{{"7:61", `address 10.0.2.2 is outside network "frontend" ` +
				"(10.0.1.0/24, fd00:1::/64)"}},
		},
		{
			name: "service network listed twice",
			in:   head + "services:\n  - {name: web, networks: [frontend, frontend]}\n",
			want: []problem{{"7:38", `network "frontend" listed twice`}},
		},
		{
			name: "service on an unknown network",
			in:   head + "services:\n  - {name: web, networks: [frontend, public]}\n",
			want: []problem{{"7:38", `unknown network "public"`}},
		},
		{
			name: "address on a network the service does not list",
			in: head + "services:\n  - name: web\n    networks: [frontend]\n    tasks:\n" +
				"      - {slot: 1, addresses: {backend: 10.0.2.11}}\n",
			want: []problem{{"10:31", `network "backend" is not among the service's ` +
				"networks (frontend)"}},
		},
		{
			name: "port without name",
			in:   head + "services:\n  - {name: web, ports: [{port: 80}]}\n",
			want: []problem{{"7:25", "port: missing name"}},
		},
		{
			name: "port name not a label",
			in:   head + "services:\n  - {name: web, ports: [{name: _http, port: 80}]}\n",
			want: []problem{{"7:32", `port name "_http" is not a DNS label`}},
		},
		{
			name: "port without number",
			in:   head + "services:\n  - {name: web, ports: [{name: http}]}\n",
			want: []problem{{"7:25", "port: missing port"}},
		},
		{
			name: "port zero",
			in:   head + "services:\n  - {name: web, ports: [{name: http, port: 0}]}\n",
			want: []problem{{"7:44", "port 0 out of range (want 1 to 65535)"}},
		},
		{
			name: "port too large",
			in:   head + "services:\n  - {name: web, ports: [{name: http, port: 65536}]}\n",
			want: []problem{{"7:44", "port 65536 out of range"}},
		},
		{
			name: "port not a number",
			in:   head + "services:\n  - {name: web, ports: [{name: http, port: http}]}\n",
			want: []problem{{"7:44", `port: want a number from 1 to 65535, got "http"`}},
		},
		{
			name: "negative port",
			in:   head + "services:\n  - {name: web, ports: [{name: http, port: -80}]}\n",
			want: []problem{{"7:44", `got "-80"`}},
		},
		{
			name: "bad protocol",
			in: head + "services:\n  - {name: web, ports: [{name: h, port: 80, " +
				"protocol: sctp}]}\n",
			want: []problem{{"7:55", `unknown protocol "sctp" (want tcp or udp)`}},
		},
		{
			name: "port defined twice",
			in: head + "services:\n  - name: web\n    ports:\n      - {name: http, port: 80}\n" +
				"      - {name: HTTP, port: 8080}\n",
			want: []problem{{"10:16", "port http/tcp already defined at 9:16"}},
		},
		{
			name: "task without slot",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {addresses: {frontend: 10.0.1.11}}\n",
			want: []problem{{"9:9", "task: missing slot"}},
		},
		{
			name: "slot zero",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 0, addresses: {frontend: 10.0.1.11}}\n",
			want: []problem{{"9:16", "slot 0 out of range (slots count from 1)"}},
		},
		{
			name: "negative slot",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: -1, addresses: {frontend: 10.0.1.11}}\n",
			want: []problem{{"9:16", "slot -1 out of range"}},
		},
		{
			name: "fractional slot",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1.5, addresses: {frontend: 10.0.1.11}}\n",
			want: []problem{{"9:16", `slot: want a whole number from 1, got "1.5"`}},
		},
		{
			name: "duplicate slot",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: 10.0.1.11}}\n" +
				"      - {slot: 1, addresses: {frontend: 10.0.1.12}}\n",
			want: []problem{{"10:16", "slot 1 already used at 9:16"}},
		},
		{
			name: "duplicate task id",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, id: a1, addresses: {frontend: 10.0.1.11}}\n" +
				"      - {slot: 2, id: A1, addresses: {frontend: 10.0.1.12}}\n",
			want: []problem{{"10:23", `task id "a1" already used at 9:23`}},
		},
		{
			name: "task id not a label",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, id: a/1, addresses: {frontend: 10.0.1.11}}\n",
			want: []problem{{"9:23", `task id "a/1" is not a DNS label`}},
		},
		{
			name: "node not a label",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, node: n_2, addresses: {frontend: 10.0.1.11}}\n",
			want: []problem{{"9:25", `node name "n_2" is not a DNS label`}},
		},
		{
			name: "bad health",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, health: sick, addresses: {frontend: 10.0.1.11}}\n",
			want: []problem{{"9:27", `unknown health "sick"`}},
		},
		{
			name: "unknown task key",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, adresses: {frontend: 10.0.1.11}}\n",
			want: []problem{
				{"9:9", "task: missing addresses"},
				{"9:19", `unknown key "adresses" in task`},
			},
		},
		{
			name: "task without addresses",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {}}\n",
			want: []problem{{"9:19", "task: missing addresses"}},
		},
		{
			name: "network without address",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: []}}\n",
			want: []problem{{"9:31", `network "frontend": missing address`}},
		},
		{
			name: "bad address",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: 10.0.1.256}}\n",
			want: []problem{{"9:41", "bad address: ParseAddr(\"10.0.1.256\")"}},
		},
		{
			name: "address with a prefix length",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: 10.0.1.11/24}}\n",
			want: []problem{{"9:41", "bad address"}},
		},
		{
			name: "address with a zone",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: \"fd00:1::11%eth0\"}}\n",
			want: []problem{{"9:41", "has a zone"}},
		},
		{
			name: "ipv4-mapped address",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: \"::ffff:10.0.1.11\"}}\n",
			want: []problem{{"9:41", "IPv4-mapped; write it as 10.0.1.11"}},
		},
		{
			name: "multicast address",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: 224.0.0.1}}\n",
			want: []problem{{"9:41", "cannot be a task's or service's address"}},
		},
		{
			name: "ipv4 address outside the subnet",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: 10.0.2.11}}\n",
			want: []problem{{"9:41", `address 10.0.2.11 is outside network "frontend"`}},
		},
		{
			name: "ipv6 address outside the subnet",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {backend: \"fd00:1::11\"}}\n",
			want: []problem{{"9:40", `address fd00:1::11 is outside network "backend" ` +
				"(10.0.2.0/24)"}},
		},
		{
			name: "two ipv4 addresses on one network",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: [10.0.1.11, 10.0.1.12]}}\n",
			want: []problem{{"9:53", `network "frontend": a second IPv4 address ` +
				"(first at 9:42)"}},
		},
		{
			name: "two ipv6 addresses on one network",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: [\"fd00:1::1\", \"fd00:1::2\"]}}\n",
			want: []problem{{"9:55", "a second IPv6 address (first at 9:42)"}},
		},
		{
			name: "address used twice",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: 10.0.1.11}}\n" +
				"  - name: api\n    tasks:\n" +
				"      - {slot: 1, addresses: {frontend: 10.0.1.11}}\n",
			want: []problem{{"12:41", `address 10.0.1.11 on network "frontend" already ` +
				"used at 9:41"}},
		},
		{
			name: "task on an unknown network",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {public: 192.0.2.1}}\n" +
				"      - {slot: 2, addresses: {public: 192.0.2.2}}\n",
			want: []problem{{"9:31", `unknown network "public": define it in this file ` +
				"or in another task file of the directory"}},
		},
		{
			name: "address network not a label",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 1, addresses: {front.end: 10.0.1.11}}\n",
			want: []problem{{"9:31", `network name "front.end" is not a DNS label`}},
		},
		{
			name: "task is a value",
			in:   head + "services:\n  - name: web\n    tasks: [web.1]\n",
			want: []problem{{"8:13", "task: want a mapping, got a value"}},
		},
		{
			name: "name is a list",
			in:   head + "services:\n  - name: [web]\n",
			want: []problem{{"7:11", "service name: want a value, got a list"}},
		},
		{
			name: "several problems in position order",
			in: head + "services:\n  - name: web\n    tasks:\n" +
				"      - {slot: 0, addresses: {public: 192.0.2.1}}\n" +
				"      - {slot: x, addresses: {frontend: 10.0.9.1}}\n",
			want: []problem{
				{"9:16", "slot 0 out of range"},
				{"9:31", `unknown network "public"`},
				{"10:16", `slot: want a whole number from 1, got "x"`},
				{"10:41", "outside network"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Parse("f.yaml", []byte(tc.in))
			if st != nil {
				t.Errorf("got state %+v, want none", st)
			}
			checkProblems(t, err, "f.yaml", tc.want)
		})
	}
}

// checkProblems holds err against want, one *ParseError per problem.
func checkProblems(t *testing.T, err error, file string, want []problem) {
	t.Helper()
	got := ParseErrors(err)
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d: %v", len(got), len(want), err)
	}
	for i, pe := range got {
		pos := fmt.Sprintf("%d:%d", pe.Line, pe.Col)
		if pos != want[i].pos || !strings.Contains(pe.Err.Error(), want[i].text) {
			t.Errorf("problem %d: got %v, want %s:%s: ...%s...", i, pe, file, want[i].pos,
				want[i].text)
		}
		if prefix := file + ":" + pos + ": "; !strings.HasPrefix(pe.Error(), prefix) {
			t.Errorf("problem %d: got %q, want it to start with %q", i, pe.Error(), prefix)
		}
	}
}

func TestParseTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(head + "services:\n  - name: web\n    tasks:\n")
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "      - {slot: 0, addresses: {frontend: 10.0.9.%d}}\n", i)
	}
	_, err := Parse("f.yaml", []byte(b.String()))
	got := ParseErrors(err)
	if len(got) != maxErrors+1 {
		t.Fatalf("got %d problems, want %d", len(got), maxErrors+1)
	}
	if last := got[len(got)-1]; !errors.Is(last, ErrTooManyErrors) {
		t.Errorf("got last problem %v, want %v", last, ErrTooManyErrors)
	}
}

func TestParseDefaults(t *testing.T) {
	in := head + `services:
  - name: Web
    ports: [{name: HTTP, port: 80}]
    tasks:
      - {slot: 2, addresses: {FrontEnd: ["fd00:1::12", 10.0.1.12]}}
`
	st, err := Parse("f.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	svc, task := st.Services[0], st.Tasks[0]
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "service name", got: svc.Name, want: "web"},
		{name: "endpoint mode", got: svc.Mode, want: catalog.ModeDNSRR},
		{name: "port", got: svc.Ports[0], want: catalog.Port{
			Name:     "http",
			Port:     80,
			Protocol: "tcp",
		}},
		{name: "service networks", got: fmt.Sprint(svc.Networks), want: "[frontend]"},
		{name: "task id", got: task.ID, want: catalog.TaskID("web", 2)},
		{name: "task service", got: task.Service, want: "web"},
		{name: "health", got: task.Health, want: catalog.Healthy},
		{name: "node", got: task.Node, want: ""},
		{name: "addresses", got: fmt.Sprint(task.Addrs), want: fmt.Sprint([]catalog.Addr{
			{Network: "frontend", IP: netip.MustParseAddr("fd00:1::12")},
			{Network: "frontend", IP: netip.MustParseAddr("10.0.1.12")},
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "no bytes", in: ""},
		{name: "comments", in: "# nothing yet\n"},
		{name: "null document", in: "~\n"},
		{name: "empty mapping", in: "{}\n"},
		{name: "empty lists", in: "networks: []\nservices: []\n"},
		{name: "byte order mark", in: "\uFEFFnetworks: []\n"},
		{name: "version", in: "version: 1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Parse("f.yaml", []byte(tc.in))
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if len(st.Networks)+len(st.Services)+len(st.Tasks) != 0 {
				t.Errorf("got %+v, want an empty state", st)
			}
		})
	}
}

func TestParseFileRefs(t *testing.T) {
	in := `services:
  - name: api
    networks: [frontend, backend]
    tasks:
      - {slot: 1, addresses: {frontend: 10.0.1.21}}
`
	f, err := ParseFile("api.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{Network: "frontend", Line: 3, Col: 16},
		{Network: "backend", Line: 3, Col: 26},
		{Network: "frontend", Line: 5, Col: 31},
		{Network: "frontend", Addr: netip.MustParseAddr("10.0.1.21"), Line: 5, Col: 41},
	}
	if got := fmt.Sprint(f.Refs); got != fmt.Sprint(want) {
		t.Fatalf("got refs %v, want %v", got, want)
	}

	defined, err := Parse("net.yaml", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		known Lookup
		want  []problem
	}{
		{
			name:  "nothing known",
			known: nil,
			want: []problem{
				{"3:16", `unknown network "frontend"`},
				{"3:26", `unknown network "backend"`},
			},
		},
		{
			name:  "defined elsewhere",
			known: Networks(defined),
		},
		{
			name:  "address outside the subnet defined elsewhere",
			known: Networks(netState("frontend", "10.0.9.0/24", "backend", "10.0.2.0/24")),
			want: []problem{{"5:41", `address 10.0.1.21 is outside network "frontend" ` +
				"(10.0.9.0/24)"}},
		},
		{
			name: "subnets merged from several files",
			known: Networks(
				netState("frontend", "10.0.9.0/24", "backend", "10.0.2.0/24"),
				netState("frontend", "10.0.1.0/24"),
			),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.CheckRefs(tc.known)
			checkProblems(t, err, "api.yaml", tc.want)
			if len(tc.want) > 0 && strings.Contains(tc.want[0].text, "unknown network") &&
				!errors.Is(err, ErrUnknownNetwork) {
				t.Errorf("got %v, want it to wrap ErrUnknownNetwork", err)
			}
		})
	}
}

func TestParseAliasBudget(t *testing.T) {
	// a thousand ports, named by each of a thousand services: a million
	// ports, some seven million values, from a file of some 60 kB
	var b strings.Builder
	b.WriteString("services:\n  - name: s0\n    ports: &p\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "      - {name: p%d, port: %d}\n", i, i+1)
	}
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&b, "  - {name: s%d, ports: *p}\n", i)
	}
	_, err := Parse("f.yaml", []byte(b.String()))
	if !errors.Is(err, errTooComplex) || len(ParseErrors(err)) != 1 {
		t.Errorf("got %v, want one *ParseError wrapping %v", err, errTooComplex)
	}
}

// TestParseBudgetEverywhere runs out of budget at every step of a file
// that uses aliases, so that it runs out both following an alias and
// copying what an alias names: the file must be rejected each time, never
// accepted with what could be read.
func TestParseBudgetEverywhere(t *testing.T) {
	in := head + `services:
  - name: web
    networks: &nets [frontend, backend]
    ports: &ports [{name: http, port: 80}, {name: https, port: 443}]
    tasks:
      - {slot: 1, addresses: {frontend: 10.0.1.11}}
  - name: api
    networks: *nets
    ports: *ports
    tasks:
      - {slot: 1, addresses: {frontend: 10.0.1.21, backend: 10.0.2.21}}
`
	if _, err := Parse("f.yaml", []byte(in)); err != nil {
		t.Fatalf("got %v with the full budget, want no error", err)
	}
	defer func(n, b int) { maxNodes, nodesPerByte = n, b }(maxNodes, nodesPerByte)
	nodesPerByte = 0
	for budget := 0; budget < 90; budget++ {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			maxNodes = budget
			st, err := Parse("f.yaml", []byte(in))
			if st != nil || !errors.Is(err, errTooComplex) {
				t.Errorf("got state %v and error %v, want no state and %v", st != nil, err,
					errTooComplex)
			}
		})
	}
}

func TestParseErrorFormat(t *testing.T) {
	cause := errors.New("bad thing")
	tests := []struct {
		name string
		err  *ParseError
		want string
	}{
		{
			name: "with file",
			err:  &ParseError{File: "tasks.d/web.yaml", Line: 3, Col: 7, Err: cause},
			want: "tasks.d/web.yaml:3:7: bad thing",
		},
		{
			name: "without file",
			err:  &ParseError{Line: 1, Col: 1, Err: cause},
			want: "1:1: bad thing",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if !errors.Is(tc.err, cause) {
				t.Errorf("got errors.Is false, want true")
			}
		})
	}
}

// netState returns a state that defines networks: pairs of a name and a
// subnet.
func netState(pairs ...string) *catalog.State {
	s := &catalog.State{}
	for i := 0; i+1 < len(pairs); i += 2 {
		s.Networks = append(s.Networks, catalog.Network{
			Name:    pairs[i],
			Subnets: []netip.Prefix{netip.MustParsePrefix(pairs[i+1])},
		})
	}
	return s
}
