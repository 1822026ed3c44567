package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// DefaultPort is the gossip port, TCP and UDP, when the bind address names
// none.
const DefaultPort = 7946

// Defaults of Config's optional fields.
const (
	DefaultMaxQueue          = 1024
	DefaultReconnectInterval = 10 * time.Second
	DefaultReconnectTimeout  = 6 * time.Hour
)

// assemblyTTL is how long a record arriving in chunks may wait for its
// missing chunks before the pieces are dropped.
const assemblyTTL = time.Minute

// metaVersion is the first byte of a node's memberlist meta.
const metaVersion = 1

// ErrNoToken is returned by Start when the configuration holds no token.
var ErrNoToken = errors.New("no join token: run dnsd init, or set token_file")

// Config says how a node takes part in the cluster. Name and Tokens are
// required; the rest have defaults.
type Config struct {
	// Name is the node's name in the cluster; it must be the catalog's
	// Self and unique in the cluster.
	Name string
	// BindAddr is host:port to listen on for gossip, TCP and UDP; default
	// 0.0.0.0:7946. Port 0 picks a free port.
	BindAddr string
	// AdvertiseAddr is host:port other nodes reach this one at; default
	// the bind address, or a private address of the host when binding to
	// all of them.
	AdvertiseAddr string
	// Join lists host:port of nodes to join at start. A node that reaches
	// none of them keeps trying with backoff and serves its own tasks
	// meanwhile.
	Join []string
	// Tokens hold the cluster label and keys; the first is the primary.
	Tokens []Token
	// TokenFile, if set, is rewritten with the keys whenever a rotation
	// changes them, so that a restart uses the current ones.
	TokenFile string
	// Logger receives the cluster's log; default slog.Default().
	Logger *slog.Logger
	// MaxQueue caps the broadcast queue (messages); default
	// DefaultMaxQueue. What the cap drops, push/pull repairs.
	MaxQueue int
	// ReconnectInterval is how often the node tries to rejoin nodes that
	// failed, and its join addresses while it is alone.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a failed node is tried and remembered.
	ReconnectTimeout time.Duration
	// Tune, if set, adjusts memberlist's configuration (LAN defaults)
	// before the node starts. Tests and benchmarks shorten timings with it.
	Tune func(*memberlist.Config)
	// Block, if set, reports whether traffic to or from the gossip address
	// addr (host:port) is dropped. Tests cut partitions with it.
	Block func(addr string) bool
}

// Member is one node as the cluster sees it.
type Member struct {
	Name string `json:"name"`
	// Addr is the node's gossip address, host:port.
	Addr string `json:"address"`
	// Alive is false for a node that failed or left and is remembered for
	// reconnecting.
	Alive bool `json:"alive"`
	// Self marks the node that answered.
	Self bool `json:"self"`
}

// Cluster is this node's membership in the cluster. It publishes the
// catalog parts whose node is the catalog's Self, and puts every other live
// node's parts into the catalog under that node's name.
//
// All methods are safe for concurrent use. Leave and Shutdown may be
// called more than once; the second call does nothing.
type Cluster struct {
	cfg    Config
	cat    *catalog.Catalog
	log    *slog.Logger
	ml     *memberlist.Memberlist
	mlc    *memberlist.Config
	tr     *transport
	queue  *memberlist.TransmitLimitedQueue
	inc    uint64
	label  string
	stats  Stats
	nLive  atomic.Int64
	stopCh chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	st       *store
	own      *record
	ownParts map[string]*catalog.State
	keys     *keyring
	rotating bool

	leaveOnce    sync.Once
	shutdownOnce sync.Once
}

// Start creates the node's memberlist, binds the gossip port, and starts
// joining cfg.Join in the background. It returns once the port is bound;
// it does not wait for the join. The catalog's own parts are published
// from then on.
func Start(cfg Config, cat *catalog.Catalog) (*Cluster, error) {
	if len(cfg.Tokens) == 0 {
		return nil, ErrNoToken
	}
	cfg = withDefaults(cfg, cat)
	c := &Cluster{
		cfg:    cfg,
		cat:    cat,
		log:    cfg.Logger,
		inc:    uint64(time.Now().UnixNano()),
		label:  cfg.Tokens[0].Label,
		st:     newStore(cfg.Name),
		keys:   keyringOf(0, cfg.Tokens),
		stopCh: make(chan struct{}),
	}
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(c.nLive.Load()) + 1 },
		RetransmitMult: memberlist.DefaultLANConfig().RetransmitMult,
	}
	if err := c.create(); err != nil {
		return nil, err
	}
	c.queue.RetransmitMult = c.mlc.RetransmitMult

	// watch before the first publish, so no change falls between them
	watch, unwatch := cat.Watch()
	c.publish()
	c.wg.Add(3)
	go c.followCatalog(watch, unwatch)
	go c.joinLoop()
	go c.maintain()
	c.log.Info("cluster started", "node", cfg.Name, "listener", c.Addr())
	return c, nil
}

func withDefaults(cfg Config, cat *catalog.Catalog) Config {
	if cfg.Name == "" {
		cfg.Name = cat.Self()
	}
	if cfg.BindAddr == "" {
		cfg.BindAddr = net.JoinHostPort("0.0.0.0", strconv.Itoa(DefaultPort))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "cluster")
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = DefaultReconnectInterval
	}
	if cfg.ReconnectTimeout <= 0 {
		cfg.ReconnectTimeout = DefaultReconnectTimeout
	}
	return cfg
}

func keyringOf(epoch uint64, toks []Token) *keyring {
	k := &keyring{epoch: epoch}
	for _, t := range toks {
		k.keys = append(k.keys, t.Key)
	}
	return k
}

// create builds memberlist's configuration and transport and starts it.
func (c *Cluster) create() error {
	host, port, err := splitHostPort(c.cfg.BindAddr, DefaultPort)
	if err != nil {
		return fmt.Errorf("bind address: %w", err)
	}
	mlc := memberlist.DefaultLANConfig()
	mlc.Name = c.cfg.Name
	mlc.BindAddr, mlc.BindPort = host, port
	mlc.Label = c.label
	mlc.GossipVerifyIncoming = true
	mlc.GossipVerifyOutgoing = true
	mlc.Delegate = (*delegate)(c)
	mlc.Events = (*delegate)(c)
	mlc.Logger = newMemberlistLogger(c.log)
	if c.cfg.Tune != nil {
		c.cfg.Tune(mlc)
	}

	kr, err := memberlist.NewKeyring(keyBytes(c.keys.keys), c.keys.keys[0][:])
	if err != nil {
		return fmt.Errorf("gossip keyring: %w", err)
	}
	mlc.Keyring = kr

	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{host},
		BindPort:  port,
		Logger:    mlc.Logger,
	})
	if err != nil {
		return fmt.Errorf("binding gossip port %s: %w", c.cfg.BindAddr, err)
	}
	if port == 0 {
		mlc.BindPort = nt.GetAutoBindPort()
	}
	if c.cfg.AdvertiseAddr != "" {
		ah, ap, err := splitHostPort(c.cfg.AdvertiseAddr, mlc.BindPort)
		if err != nil {
			nt.Shutdown()
			return fmt.Errorf("advertise address: %w", err)
		}
		mlc.AdvertiseAddr, mlc.AdvertisePort = ah, ap
	}
	c.tr = newTransport(nt, c.label, kr.GetKeys, c.cfg.Block, &c.stats, c.log)
	mlc.Transport = c.tr

	c.mlc = mlc
	ml, err := memberlist.Create(mlc)
	if err != nil {
		c.tr.Shutdown()
		return fmt.Errorf("starting memberlist: %w", err)
	}
	c.ml = ml
	return nil
}

func keyBytes(keys [][KeySize]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i := range keys {
		out[i] = keys[i][:]
	}
	return out
}

// splitHostPort reads host[:port]; a missing port is def.
func splitHostPort(addr string, def int) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if !errors.As(err, &ae) || ae.Err != "missing port in address" {
			return "", 0, fmt.Errorf("%q: %w", addr, err)
		}
		return addr, def, nil
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%q: bad port: %w", addr, err)
	}
	return host, int(port), nil
}

// Name returns the node's name in the cluster.
func (c *Cluster) Name() string { return c.cfg.Name }

// Addr returns the address other nodes reach this node at, host:port.
func (c *Cluster) Addr() string {
	n := c.ml.LocalNode()
	return n.Address()
}

// Stats returns the node's traffic counters. The counters keep counting;
// the pointer stays valid after Shutdown.
func (c *Cluster) Stats() *Stats { return &c.stats }

// MemberlistConfig returns the memberlist configuration the node runs
// with, after Tune. The caller must not change it.
func (c *Cluster) MemberlistConfig() *memberlist.Config { return c.mlc }

// Members returns this node and every other node it knows of, alive or
// remembered as failed, sorted by name. It does not block on the network.
func (c *Cluster) Members() []Member {
	out := []Member{{Name: c.cfg.Name, Addr: c.Addr(), Alive: true, Self: true}}
	c.mu.Lock()
	for name, p := range c.st.peers {
		if p.addr == "" {
			continue // heard of through gossip only, never a member
		}
		out = append(out, Member{Name: name, Addr: p.addr, Alive: p.live})
	}
	c.mu.Unlock()
	sortMembers(out)
	return out
}

// Leave tells the other nodes that this node is going, waits up to timeout
// for the message to go out, and shuts the node down. The others drop its
// tasks as soon as they hear, without waiting for failure detection.
func (c *Cluster) Leave(timeout time.Duration) error {
	var err error
	c.leaveOnce.Do(func() {
		if lerr := c.ml.Leave(timeout); lerr != nil {
			err = fmt.Errorf("leaving cluster: %w", lerr)
		}
		c.log.Info("cluster left", "node", c.cfg.Name)
	})
	return errors.Join(err, c.Shutdown())
}

// Shutdown stops the node without telling the others, which then treat
// it as failed. It blocks until the node's goroutines have stopped.
func (c *Cluster) Shutdown() error {
	var err error
	c.shutdownOnce.Do(func() {
		close(c.stopCh)
		if serr := c.ml.Shutdown(); serr != nil {
			err = fmt.Errorf("stopping memberlist: %w", serr)
		}
		c.wg.Wait()
	})
	return err
}

// followCatalog republishes the node's own parts whenever they change.
func (c *Cluster) followCatalog(ch <-chan struct{}, unwatch func()) {
	defer c.wg.Done()
	defer unwatch()
	for {
		select {
		case <-ch:
			c.publish()
		case <-c.stopCh:
			return
		}
	}
}

// publish makes a new version of the node's record if its parts changed,
// and broadcasts it.
func (c *Cluster) publish() {
	parts := c.cat.NodeParts(c.cfg.Name)
	c.mu.Lock()
	same := c.own != nil && samePointers(parts, c.ownParts)
	c.mu.Unlock()
	if same {
		return
	}
	payload, err := encodeParts(parts)
	if err != nil {
		c.log.Error("own tasks not published", "err", err)
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.ownParts = parts
	if c.own != nil && bytes.Equal(payload, c.own.payload) {
		return
	}
	ver := uint64(1)
	if c.own != nil {
		ver = c.own.ver + 1
	}
	// TODO: every change resends the node's whole record, so a node with
	// thousands of tasks pays for all of them on each change; deltas
	// would cut the bandwidth of large nodes.
	c.own = &record{node: c.cfg.Name, inc: c.inc, ver: ver, payload: payload, parts: parts}
	for _, ch := range splitRecord(c.own) {
		c.queueLocked(chunkBroadcast(encodeChunk(ch), ch))
	}
	c.log.Debug("own tasks published", "node", c.cfg.Name)
}

func samePointers(a, b map[string]*catalog.State) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// queueLocked adds b to the broadcast queue and keeps the queue within
// its cap, dropping the most transmitted messages first.
func (c *Cluster) queueLocked(b *broadcast) {
	c.queue.QueueBroadcast(b)
	if n := c.queue.NumQueued(); n > c.cfg.MaxQueue {
		c.queue.Prune(c.cfg.MaxQueue)
		broadcastsPruned.Add(float64(n - c.cfg.MaxQueue))
	}
	queueDepth.Set(float64(c.queue.NumQueued()))
}

// applyLocked brings node's parts in the catalog in line with the store.
func (c *Cluster) applyLocked(node string) {
	p := c.st.peers[node]
	if p == nil {
		return
	}
	want := c.st.current(node)
	if p.applied == want {
		return
	}
	if want == nil {
		c.cat.RemoveNode(node)
	} else {
		c.cat.ReplaceNode(node, want.parts)
	}
	p.applied = want
}

// mergeLocked takes a whole record from path ("broadcast" or "pushpull").
func (c *Cluster) mergeLocked(r *record, path string) {
	if c.st.stale(r.node, r.inc, r.ver) {
		mergesTotal.WithLabelValues(path, "stale").Inc()
		return
	}
	parts, err := decodeParts(r.payload)
	if err != nil {
		mergesTotal.WithLabelValues(path, "invalid").Inc()
		c.log.Warn("node record refused", "node", r.node, "err", err)
		return
	}
	r.parts = parts
	c.st.put(r, time.Now())
	mergesTotal.WithLabelValues(path, "applied").Inc()
	c.applyLocked(r.node)
}

// joinLoop joins the configured addresses, retrying with backoff until
// one answers or the node stops.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	addrs := c.joinAddrs()
	if len(addrs) == 0 {
		return
	}
	backoff := time.Second
	for {
		n, err := c.ml.Join(addrs)
		if n > 0 {
			c.log.Info("cluster joined", "node", c.cfg.Name)
			return
		}
		c.log.Warn("cluster join failed; serving own tasks meanwhile",
			"err", err, "duration_s", backoff.Seconds())
		select {
		case <-time.After(jitter(backoff)):
		case <-c.stopCh:
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// joinAddrs returns the join addresses other than this node's own.
func (c *Cluster) joinAddrs() []string {
	self := c.Addr()
	var out []string
	for _, a := range c.cfg.Join {
		h, p, err := splitHostPort(a, c.mlc.BindPort)
		if err != nil {
			out = append(out, a) // let memberlist say what is wrong
			continue
		}
		if hp := net.JoinHostPort(h, strconv.Itoa(p)); hp != self {
			out = append(out, hp)
		}
	}
	return out
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// maintain forgets long-gone nodes, rejoins failed ones (which is how a
// partition heals once memberlist stops gossiping to the dead), and
// rejoins the join addresses while the node is alone.
func (c *Cluster) maintain() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.stopCh:
			return
		}
		c.mu.Lock()
		c.st.gc(time.Now(), c.cfg.ReconnectTimeout, assemblyTTL)
		var failed []string
		for _, p := range c.st.peers {
			if !p.live && p.addr != "" {
				failed = append(failed, p.addr)
			}
		}
		c.mu.Unlock()
		c.setMemberGauges(len(failed))

		rand.Shuffle(len(failed), func(i, j int) { failed[i], failed[j] = failed[j], failed[i] })
		if len(failed) > 3 {
			failed = failed[:3]
		}
		if c.ml.NumMembers() <= 1 {
			failed = append(failed, c.joinAddrs()...)
		}
		if len(failed) > 0 {
			if n, _ := c.ml.Join(failed); n > 0 {
				c.log.Debug("failed nodes contacted", "node", c.cfg.Name)
			}
		}
	}
}

func (c *Cluster) setMemberGauges(failed int) {
	membersGauge.WithLabelValues("alive").Set(float64(c.nLive.Load() + 1))
	membersGauge.WithLabelValues("failed").Set(float64(failed))
}

// FailureBound returns how long, with high probability, a cluster of n
// nodes running memberlist configuration mc takes from a node going
// silent to every other node having dropped its tasks: time for some
// node to probe it and miss the ack (awareness may stretch probes under
// load), the suspicion timeout (Lifeguard starts at the maximum when
// enough nodes can confirm, and the confirmations shrink it), and time
// for the death to spread by gossip.
func FailureBound(mc *memberlist.Config, n int) time.Duration {
	aware := time.Duration(max(1, mc.AwarenessMaxMultiplier))
	probe := time.Duration(min(2*(n-1), 6)) * mc.ProbeInterval
	susp := suspicion(mc.SuspicionMult, n, mc.ProbeInterval)
	if n-2 >= mc.SuspicionMult-2 && mc.SuspicionMult > 2 {
		susp *= time.Duration(max(1, mc.SuspicionMaxTimeoutMult))
	}
	spread := time.Duration(retransmits(mc.RetransmitMult, n)+2) * mc.GossipInterval
	return aware*(probe+mc.ProbeTimeout) + susp + spread
}

// SuspicionTimeout returns memberlist's base suspicion timeout for n
// nodes: the least time between suspecting a node and declaring it dead.
func SuspicionTimeout(mc *memberlist.Config, n int) time.Duration {
	return suspicion(mc.SuspicionMult, n, mc.ProbeInterval)
}

func suspicion(mult, n int, interval time.Duration) time.Duration {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	return time.Duration(float64(mult) * scale * float64(interval))
}

func retransmits(mult, n int) int {
	return mult * int(math.Ceil(math.Log10(float64(n+1))))
}

// delegate carries memberlist's callbacks; memberlist calls them from its
// own goroutines, and they must not call back into memberlist.
type delegate Cluster

// NodeMeta implements memberlist.Delegate: the node's incarnation, which
// ties its records to this run of the process.
func (d *delegate) NodeMeta(limit int) []byte {
	b := []byte{metaVersion}
	return binary.BigEndian.AppendUint64(b, d.inc)
}

func parseMeta(meta []byte) (uint64, bool) {
	if len(meta) < 9 || meta[0] != metaVersion {
		return 0, false
	}
	return binary.BigEndian.Uint64(meta[1:9]), true
}

// NotifyMsg implements memberlist.Delegate: a broadcast arrived.
func (d *delegate) NotifyMsg(b []byte) {
	c := (*Cluster)(d)
	m, err := decodeMessage(b)
	if err != nil {
		mergesTotal.WithLabelValues("broadcast", "invalid").Inc()
		c.log.Debug("gossip message refused", "err", err)
		return
	}
	switch {
	case m.chunk != nil:
		c.takeChunk(m.chunk, b)
	case m.keys != nil:
		c.takeKeyring(m.keys)
	}
}

func (c *Cluster) takeChunk(ch *chunk, raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	done, fresh := c.st.addChunk(ch, time.Now())
	if fresh {
		// pass news on: the sender's own retransmits reach only a few
		c.queueLocked(chunkBroadcast(bytes.Clone(raw), ch))
	}
	if done != nil {
		c.mergeLocked(done, "broadcast")
	}
}

// GetBroadcasts implements memberlist.Delegate.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := d.queue.GetBroadcasts(overhead, limit)
	queueDepth.Set(float64(d.queue.NumQueued()))
	return msgs
}

// LocalState implements memberlist.Delegate: this node's record, those of
// the live nodes it knows, and the keyring, within maxFullState bytes.
func (d *delegate) LocalState(join bool) []byte {
	c := (*Cluster)(d)
	c.mu.Lock()
	defer c.mu.Unlock()

	s := &fullState{keys: c.keys}
	size := 0
	recs := c.st.liveRecords()
	if c.own != nil {
		recs = append([]*record{c.own}, recs...)
	}
	for _, r := range recs {
		if size += len(r.payload) + len(r.node) + 32; size > maxFullState {
			// TODO: push/pull state is capped at 16 MiB; beyond it some
			// nodes' records travel only by broadcast until the cluster
			// shrinks.
			c.log.Warn("push/pull state truncated", "node", c.cfg.Name)
			break
		}
		s.records = append(s.records, r)
	}
	return encodeFull(s)
}

// MergeRemoteState implements memberlist.Delegate: push/pull delivered
// another node's view.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	c := (*Cluster)(d)
	m, err := decodeMessage(buf)
	if err != nil || m.full == nil {
		mergesTotal.WithLabelValues("pushpull", "invalid").Inc()
		c.log.Warn("push/pull state refused", "err", err)
		return
	}
	c.mu.Lock()
	for _, r := range m.full.records {
		c.mergeLocked(r, "pushpull")
	}
	c.mu.Unlock()
	if m.full.keys != nil {
		c.takeKeyring(m.full.keys)
	}
}

// NotifyJoin implements memberlist.EventDelegate.
func (d *delegate) NotifyJoin(n *memberlist.Node) {
	c := (*Cluster)(d)
	if n.Name == c.cfg.Name {
		return
	}
	inc, ok := parseMeta(n.Meta)
	if !ok {
		c.log.Warn("node without dnsd meta ignored", "node", n.Name)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.st.peers[n.Name]; p == nil || !p.live {
		c.nLive.Add(1)
		c.log.Info("node joined", "node", n.Name, "remote_addr", n.Address())
	}
	c.st.setAlive(n.Name, inc, n.Address(), time.Now())
	c.applyLocked(n.Name)
}

// NotifyLeave implements memberlist.EventDelegate: the node failed or
// left, and its tasks go.
//
// TODO: a node that left gracefully is remembered as failed (status down,
// retried by the reconnect loop) until ReconnectTimeout; memberlist's leave
// event does not say which of the two happened.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	c := (*Cluster)(d)
	if n.Name == c.cfg.Name {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.st.peers[n.Name]; p != nil && p.live {
		c.nLive.Add(-1)
		c.log.Info("node down", "node", n.Name, "remote_addr", n.Address())
	}
	c.st.setDown(n.Name, time.Now())
	c.applyLocked(n.Name)
}

// NotifyUpdate implements memberlist.EventDelegate: a node restarted at
// the same address, or moved.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.NotifyJoin(n) }
