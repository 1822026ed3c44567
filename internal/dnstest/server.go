package dnstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is an in-memory DNS server on 127.0.0.1, serving UDP and TCP on
// the same port. Its methods are safe for concurrent use.
type Server struct {
	addr    string
	udp     *dns.Server
	tcp     *dns.Server
	queries atomic.Int64

	mu      sync.Mutex
	records map[key][]dns.RR
	extra   map[key][]dns.RR
	failing bool
}

type key struct {
	name  string
	qtype uint16
}

// Start runs a Server until the test ends. It fails the test when the
// server cannot listen.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		records: map[key][]dns.RR{},
		extra:   map[key][]dns.RR{},
	}
	pc, ln, err := listenPair()
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
	}
	s.addr = pc.LocalAddr().String()

	s.udp = s.serve(&dns.Server{PacketConn: pc})
	s.tcp = s.serve(&dns.Server{Listener: ln})
	tb.Cleanup(s.Close)
	return s
}

// listenPair opens UDP and TCP sockets on one loopback port, trying
// again when the TCP port is taken.
func listenPair() (net.PacketConn, net.Listener, error) {
	var err error
	for range 50 {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listening on udp: %w", err)
		}
		var ln net.Listener
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, fmt.Errorf("no port free for both udp and tcp: %w", err)
}

// serve starts srv and waits until it is ready to answer.
func (s *Server) serve(srv *dns.Server) *dns.Server {
	ready := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(ready) }
	srv.Handler = dns.HandlerFunc(s.answer)
	go func() { _ = srv.ActivateAndServe() }()
	<-ready
	return srv
}

// Addr returns the server's address as host:port.
func (s *Server) Addr() string { return s.addr }

// Queries returns how many queries the server has received.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Close stops the server. It may be called more than once.
func (s *Server) Close() {
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
}

// Set replaces the records of name and type rrtype with rrs (which may be
// empty, leaving the name existing with no records of that type) and the
// additional records sent with them.
func (s *Server) Set(name string, rrtype uint16, rrs, extra []dns.RR) {
	k := key{strings.ToLower(dns.Fqdn(name)), rrtype}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[k] = rrs
	s.extra[k] = extra
}

// Remove deletes every record of name, so it answers NXDOMAIN.
func (s *Server) Remove(name string) {
	n := strings.ToLower(dns.Fqdn(name))
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.records {
		if k.name == n {
			delete(s.records, k)
			delete(s.extra, k)
		}
	}
}

// Fail makes every answer SERVFAIL while on is true.
func (s *Server) Fail(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = on
}

// answer serves one query from the records.
func (s *Server) answer(w dns.ResponseWriter, q *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) == 1 {
		s.fill(m, q.Question[0])
	}
	if o := q.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), false)
	}
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
		size := dns.MinMsgSize
		if o := q.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// fill puts the answer to question into m.
func (s *Server) fill(m *dns.Msg, question dns.Question) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	name := strings.ToLower(question.Name)
	exists := false
	for k := range s.records {
		if k.name == name {
			exists = true
			break
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
		return
	}
	k := key{name, question.Qtype}
	for _, rr := range s.records[k] {
		m.Answer = append(m.Answer, dns.Copy(rr))
	}
	for _, rr := range s.extra[k] {
		m.Extra = append(m.Extra, dns.Copy(rr))
	}
}
