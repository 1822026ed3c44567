package swarm

import (
	"bytes"
	"net/netip"
)

var (
	suffixV4 = []byte(".in-addr.arpa.")
	suffixV6 = []byte(".ip6.arpa.")
)

func isReverse(qname []byte) bool {
	return bytes.HasSuffix(qname, suffixV4) || bytes.HasSuffix(qname, suffixV6)
}

// parseReverse reads the address of a full reverse name: four decimal
// labels under in-addr.arpa. or 32 nibbles under ip6.arpa. A partial
// name, as a zone apex is, gives false.
func parseReverse(qname []byte) (netip.Addr, bool) {
	if rest, ok := bytes.CutSuffix(qname, suffixV4); ok {
		return parseReverse4(rest)
	}
	if rest, ok := bytes.CutSuffix(qname, suffixV6); ok {
		return parseReverse6(rest)
	}
	return netip.Addr{}, false
}

func parseReverse4(rest []byte) (netip.Addr, bool) {
	var b [4]byte
	for i := 3; i >= 0; i-- {
		label := rest
		if j := bytes.IndexByte(rest, '.'); j >= 0 {
			label, rest = rest[:j], rest[j+1:]
		} else {
			rest = nil
		}
		if len(label) == 0 || len(label) > 3 || (len(label) > 1 && label[0] == '0') {
			return netip.Addr{}, false
		}
		v := 0
		for _, c := range label {
			if c < '0' || c > '9' {
				return netip.Addr{}, false
			}
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(v)
		if i == 0 && rest != nil {
			return netip.Addr{}, false
		}
	}
	return netip.AddrFrom4(b), true
}

func parseReverse6(rest []byte) (netip.Addr, bool) {
	// 32 nibbles, each one character and a dot, the last without its dot
	if len(rest) != 63 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i := 0; i < 32; i++ {
		c := rest[i*2]
		if i < 31 && rest[i*2+1] != '.' {
			return netip.Addr{}, false
		}
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		default:
			return netip.Addr{}, false
		}
		// the first label is the lowest nibble of the last byte
		pos := 31 - i
		if pos%2 == 0 {
			b[pos/2] |= v << 4
		} else {
			b[pos/2] |= v
		}
	}
	return netip.AddrFrom16(b), true
}
