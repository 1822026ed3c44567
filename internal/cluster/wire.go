package cluster

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// The gossip messages. Every message starts with its kind. Integers are
// uvarints except incarnations (8 bytes, big endian) and checksums (4
// bytes, big endian); strings and byte runs are preceded by their length.
//
//	chunk:   kind node inc ver index total crc32(payload) piece
//	full:    kind count {node inc ver len payload}... hasKeys [epoch n key...]
//	keyring: kind epoch n key...
//
// A payload is a node's parts (source -> catalog.State) as JSON, deflated.
const (
	kindChunk   byte = 1
	kindFull    byte = 2
	kindKeyring byte = 3
)

// Limits the decoder enforces, whoever sent the message.
const (
	maxNodeName   = 255
	maxChunks     = 4096
	maxRecords    = 1 << 16
	maxKeys       = 8
	maxPayload    = 8 << 20  // compressed payload of one record
	maxParts      = 32 << 20 // a payload inflated
	maxBroadcast  = 1024     // one broadcast; fits a 1400-byte UDP packet with headers
	maxFullState  = 16 << 20 // what LocalState sends at most
	minChunkPiece = 256
)

// errDecode is wrapped by every decoding error.
var errDecode = errors.New("malformed gossip message")

// record is one node's published state at one version of one incarnation.
// Records are immutable once made.
type record struct {
	node    string
	inc     uint64
	ver     uint64
	payload []byte

	// parts is payload decoded; nil until decoded.
	parts map[string]*catalog.State
}

// newer reports whether r supersedes o within one node's history.
func (r *record) newer(o *record) bool {
	if r.inc != o.inc {
		return r.inc > o.inc
	}
	return r.ver > o.ver
}

// chunk is one piece of a record's payload, small enough to broadcast.
type chunk struct {
	node  string
	inc   uint64
	ver   uint64
	index int
	total int
	sum   uint32
	piece []byte
}

// keyring is the cluster's set of gossip keys at one epoch; keys[0] is
// the primary.
type keyring struct {
	epoch uint64
	keys  [][KeySize]byte
}

// fullState is what push/pull swaps: records and, if known, the keyring.
type fullState struct {
	records []*record
	keys    *keyring
}

// encodeParts turns parts into a payload. The same parts always give the
// same bytes, so payloads can be compared to find changes.
func encodeParts(parts map[string]*catalog.State) ([]byte, error) {
	j, err := json.Marshal(parts)
	if err != nil {
		return nil, fmt.Errorf("encoding parts: %w", err)
	}
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(j)
	w.Close()
	return b.Bytes(), nil
}

// decodeParts reverses encodeParts, refusing payloads that inflate beyond
// maxParts.
func decodeParts(payload []byte) (map[string]*catalog.State, error) {
	r := flate.NewReader(bytes.NewReader(payload))
	defer r.Close()
	j, err := io.ReadAll(io.LimitReader(r, maxParts+1))
	if err != nil {
		return nil, fmt.Errorf("%w: inflating parts: %w", errDecode, err)
	}
	if len(j) > maxParts {
		return nil, fmt.Errorf("%w: parts exceed %d bytes", errDecode, maxParts)
	}
	var parts map[string]*catalog.State
	if err := json.Unmarshal(j, &parts); err != nil {
		return nil, fmt.Errorf("%w: parts: %w", errDecode, err)
	}
	return parts, nil
}

// splitRecord cuts r's payload into chunks whose messages are at most
// maxBroadcast bytes each.
func splitRecord(r *record) []*chunk {
	head := appendChunkHead(nil, &chunk{node: r.node, inc: r.inc, ver: r.ver,
		index: maxChunks, total: maxChunks})
	size := max(maxBroadcast-len(head), minChunkPiece)
	total := max(1, (len(r.payload)+size-1)/size)
	sum := crc32.ChecksumIEEE(r.payload)

	out := make([]*chunk, 0, total)
	for i := range total {
		out = append(out, &chunk{
			node:  r.node,
			inc:   r.inc,
			ver:   r.ver,
			index: i,
			total: total,
			sum:   sum,
			piece: r.payload[i*size : min(len(r.payload), (i+1)*size)],
		})
	}
	return out
}

func appendChunkHead(b []byte, c *chunk) []byte {
	b = append(b, kindChunk)
	b = appendString(b, c.node)
	b = binary.BigEndian.AppendUint64(b, c.inc)
	b = binary.AppendUvarint(b, c.ver)
	b = binary.AppendUvarint(b, uint64(c.index))
	b = binary.AppendUvarint(b, uint64(c.total))
	return binary.BigEndian.AppendUint32(b, c.sum)
}

func encodeChunk(c *chunk) []byte {
	return append(appendChunkHead(nil, c), c.piece...)
}

func encodeFull(s *fullState) []byte {
	b := []byte{kindFull}
	b = binary.AppendUvarint(b, uint64(len(s.records)))
	for _, r := range s.records {
		b = appendString(b, r.node)
		b = binary.BigEndian.AppendUint64(b, r.inc)
		b = binary.AppendUvarint(b, r.ver)
		b = appendBytes(b, r.payload)
	}
	if s.keys == nil {
		return append(b, 0)
	}
	return appendKeyring(append(b, 1), s.keys)
}

func encodeKeyring(k *keyring) []byte {
	return appendKeyring([]byte{kindKeyring}, k)
}

func appendKeyring(b []byte, k *keyring) []byte {
	b = binary.AppendUvarint(b, k.epoch)
	b = binary.AppendUvarint(b, uint64(len(k.keys)))
	for _, key := range k.keys {
		b = append(b, key[:]...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// message is a decoded gossip message: exactly one field is set.
type message struct {
	chunk *chunk
	full  *fullState
	keys  *keyring
}

// decodeMessage reads one gossip message. It never panics, whatever b
// holds, and the result shares no memory with b.
func decodeMessage(b []byte) (message, error) {
	if len(b) == 0 {
		return message{}, fmt.Errorf("%w: empty", errDecode)
	}
	d := &decoder{b: b[1:]}
	var m message
	switch b[0] {
	case kindChunk:
		m.chunk = d.chunk()
	case kindFull:
		m.full = d.full()
	case kindKeyring:
		m.keys = d.keyring()
	default:
		return message{}, fmt.Errorf("%w: unknown kind %d", errDecode, b[0])
	}
	if d.err == nil && m.full != nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return message{}, d.err
	}
	return m, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errDecode}, args...)...)
	}
}

func (d *decoder) uvarint(limit uint64, what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	if v > limit {
		d.fail("%s %d exceeds %d", what, v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) fixed(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated %s", what)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u64(what string) uint64 {
	p := d.fixed(8, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *decoder) bytes(limit uint64, what string) []byte {
	n := d.uvarint(limit, what+" length")
	return bytes.Clone(d.fixed(int(n), what))
}

func (d *decoder) name() string {
	n := d.bytes(maxNodeName, "node name")
	if d.err == nil && len(n) == 0 {
		d.fail("empty node name")
	}
	return string(n)
}

func (d *decoder) chunk() *chunk {
	c := &chunk{node: d.name()}
	c.inc = d.u64("incarnation")
	c.ver = d.uvarint(1<<63, "version")
	c.index = int(d.uvarint(maxChunks, "chunk index"))
	c.total = int(d.uvarint(maxChunks, "chunk count"))
	if p := d.fixed(4, "checksum"); p != nil {
		c.sum = binary.BigEndian.Uint32(p)
	}
	if d.err == nil && (c.total == 0 || c.index >= c.total) {
		d.fail("chunk %d of %d", c.index, c.total)
	}
	c.piece = bytes.Clone(d.b)
	d.b = nil
	return c
}

func (d *decoder) full() *fullState {
	n := d.uvarint(maxRecords, "record count")
	s := &fullState{}
	for range n {
		r := &record{node: d.name()}
		r.inc = d.u64("incarnation")
		r.ver = d.uvarint(1<<63, "version")
		r.payload = d.bytes(maxPayload, "payload")
		if d.err != nil {
			return nil
		}
		s.records = append(s.records, r)
	}
	switch has := d.fixed(1, "keyring flag"); {
	case has == nil:
	case has[0] == 1:
		s.keys = d.keyring()
	case has[0] != 0:
		d.fail("keyring flag %d", has[0])
	}
	return s
}

func (d *decoder) keyring() *keyring {
	k := &keyring{epoch: d.uvarint(1<<63, "keyring epoch")}
	n := d.uvarint(maxKeys, "key count")
	if d.err == nil && n == 0 {
		d.fail("empty keyring")
	}
	for range n {
		p := d.fixed(KeySize, "key")
		if p == nil {
			return nil
		}
		var key [KeySize]byte
		copy(key[:], p)
		k.keys = append(k.keys, key)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return k
}
