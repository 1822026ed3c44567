package cluster

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the size of a gossip key in bytes: AES-256.
const KeySize = 32

const (
	tokenPrefix  = "DNSDTKN"
	tokenVersion = "1"
	maxLabel     = 64
	checkBytes   = 5
)

// ErrBadToken is wrapped by every error ParseToken returns.
var ErrBadToken = errors.New("bad join token")

// b32 writes tokens in lower case without padding; ParseToken accepts any
// case, as people retype tokens.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Token is a cluster's join token: the cluster's label, which memberlist
// puts on every packet, and the AES key that encrypts gossip. Whoever holds
// the token can join the cluster and read its gossip.
type Token struct {
	Label string
	Key   [KeySize]byte
}

// NewToken returns a token for label with a fresh random key.
func NewToken(label string) (Token, error) {
	if err := checkLabel(label); err != nil {
		return Token{}, err
	}
	t := Token{Label: label}
	if _, err := rand.Read(t.Key[:]); err != nil {
		return Token{}, fmt.Errorf("generating gossip key: %w", err)
	}
	return t, nil
}

// NewLabel returns a random cluster label such as "dnsd-3f9a1c0b".
func NewLabel() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating cluster label: %w", err)
	}
	return "dnsd-" + hex.EncodeToString(b[:]), nil
}

// String returns the token as people copy it:
// DNSDTKN-1-<label>-<key>-<check>, each part in lower-case base32, the
// last a checksum of the others so that a mistyped token is caught.
func (t Token) String() string {
	label := strings.ToLower(b32.EncodeToString([]byte(t.Label)))
	key := strings.ToLower(b32.EncodeToString(t.Key[:]))
	sum := tokenCheck(t.Label, t.Key[:])
	return tokenPrefix + "-" + tokenVersion + "-" + label + "-" + key + "-" + sum
}

// ParseToken reads a token that String wrote. Errors wrap ErrBadToken and
// say which part is wrong.
func ParseToken(s string) (Token, error) {
	f := strings.Split(strings.TrimSpace(s), "-")
	if len(f) != 5 || !strings.EqualFold(f[0], tokenPrefix) {
		return Token{}, fmt.Errorf("%w: want %s-%s-<label>-<key>-<check>",
			ErrBadToken, tokenPrefix, tokenVersion)
	}
	if f[1] != tokenVersion {
		return Token{}, fmt.Errorf("%w: unsupported version %q", ErrBadToken, f[1])
	}

	label, err := b32.DecodeString(strings.ToUpper(f[2]))
	if err != nil {
		return Token{}, fmt.Errorf("%w: label part: %w", ErrBadToken, err)
	}
	key, err := b32.DecodeString(strings.ToUpper(f[3]))
	if err != nil {
		return Token{}, fmt.Errorf("%w: key part: %w", ErrBadToken, err)
	}
	if len(key) != KeySize {
		return Token{}, fmt.Errorf("%w: key is %d bytes, want %d", ErrBadToken, len(key), KeySize)
	}

	if !strings.EqualFold(f[4], tokenCheck(string(label), key)) {
		return Token{}, fmt.Errorf("%w: checksum mismatch (mistyped or truncated?)", ErrBadToken)
	}
	if err := checkLabel(string(label)); err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	t := Token{Label: string(label)}
	copy(t.Key[:], key)
	return t, nil
}

func tokenCheck(label string, key []byte) string {
	h := sha256.New()
	h.Write([]byte(tokenPrefix + "-" + tokenVersion + "\x00" + label + "\x00"))
	h.Write(key)
	return strings.ToLower(b32.EncodeToString(h.Sum(nil)[:checkBytes]))
}

func checkLabel(label string) error {
	if label == "" || len(label) > maxLabel {
		return fmt.Errorf("cluster label must be 1 to %d characters, got %d", maxLabel, len(label))
	}
	for _, r := range label {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '.' {
			return fmt.Errorf("cluster label %q: only a-z, 0-9, '-' and '.' are allowed", label)
		}
	}
	return nil
}

// ReadTokenFile reads the tokens in path, one a line; blank lines and lines
// starting with # are skipped. The first token is the primary: it encrypts
// what this node sends; the others are accepted too, which is how a key
// rotation keeps old and new keys working side by side. All tokens must
// carry the same label.
func ReadTokenFile(path string) ([]Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading token file: %w", err)
	}
	var toks []Token
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t, err := ParseToken(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		if len(toks) > 0 && t.Label != toks[0].Label {
			return nil, fmt.Errorf("%s:%d: label %q differs from the first token's %q",
				path, i+1, t.Label, toks[0].Label)
		}
		toks = append(toks, t)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("token file %s: %w: no token", path, ErrBadToken)
	}
	return toks, nil
}

// WriteTokenFile writes toks to path, primary first, readable by the owner
// only. It writes a temporary file and renames it, so a reader never sees
// half a file.
func WriteTokenFile(path string, toks []Token) error {
	var b bytes.Buffer
	for _, t := range toks {
		b.WriteString(t.String())
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating token directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return fmt.Errorf("writing token file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("writing token file: %w", err)
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("writing token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing token file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing token file: %w", err)
	}
	return nil
}

// DataDirEnv names the environment variable that overrides DefaultDataDir.
const DataDirEnv = "DNSD_DATA_DIR"

// TokenFileName is the name of the token file inside the data directory.
const TokenFileName = "token"

// DefaultDataDir returns where dnsd keeps its cluster files: $DNSD_DATA_DIR
// when set, else %ProgramData%\dnsd on Windows and /var/lib/dnsd elsewhere.
func DefaultDataDir() string {
	if d := os.Getenv(DataDirEnv); d != "" {
		return d
	}
	if runtime.GOOS == "windows" {
		base := os.Getenv("ProgramData")
		if base == "" {
			base = `C:\ProgramData`
		}
		return filepath.Join(base, "dnsd")
	}
	return "/var/lib/dnsd"
}
