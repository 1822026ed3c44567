package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	tok, err := NewToken("prod.example")
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if !strings.HasPrefix(s, "DNSDTKN-1-") {
		t.Fatalf("got %q, want prefix DNSDTKN-1-", s)
	}
	for _, in := range []string{s, strings.ToUpper(s), "  " + s + "\n"} {
		got, err := ParseToken(in)
		if err != nil {
			t.Fatalf("ParseToken(%q): %v", in, err)
		}
		if got != tok {
			t.Fatalf("got %+v, want %+v", got, tok)
		}
	}
}

func TestParseTokenErrors(t *testing.T) {
	tok, err := NewToken("dnsd-test")
	if err != nil {
		t.Fatal(err)
	}
	good := tok.String()
	f := strings.Split(good, "-")
	key := []byte(f[3])
	key[3] = map[bool]byte{true: 'b', false: 'a'}[key[3] == 'a']
	typo := strings.Join(append(f[:3:3], string(key), f[4]), "-")

	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: "want DNSDTKN-1"},
		{name: "docker token", in: "SWMTKN-1-abc-def", want: "want DNSDTKN-1"},
		{name: "version", in: strings.Replace(good, "-1-", "-2-", 1), want: "unsupported version"},
		{name: "typo in key", in: typo, want: "checksum mismatch"},
		{name: "truncated", in: good[:len(good)-3], want: "checksum mismatch"},
		{name: "bad base32", in: strings.Replace(good, f[3], "!!", 1), want: "key part"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseToken(tc.in)
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("got %v, want an ErrBadToken", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestNewTokenLabel(t *testing.T) {
	tests := []struct {
		name  string
		label string
		ok    bool
	}{
		{name: "generated", label: "dnsd-0a1b2c3d", ok: true},
		{name: "dots", label: "prod.example.org", ok: true},
		{name: "empty", label: ""},
		{name: "upper", label: "Prod"},
		{name: "space", label: "a b"},
		{name: "long", label: strings.Repeat("a", 65)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewToken(tc.label)
			if (err == nil) != tc.ok {
				t.Fatalf("got err %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
	a, _ := NewToken("dnsd-x")
	b, _ := NewToken("dnsd-x")
	other, _ := NewToken("dnsd-y")
	path := filepath.Join(t.TempDir(), "sub", "token")

	if err := WriteTokenFile(path, []Token{a, b}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("got %v, want [a b]", got)
	}

	bad := "# comment\n" + a.String() + "\n" + other.String() + "\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(path); err == nil || !strings.Contains(err.Error(), ":3:") {
		t.Fatalf("got %v, want a label mismatch at line 3", err)
	}
	if err := os.WriteFile(path, []byte("\n# none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(path); !errors.Is(err, ErrBadToken) {
		t.Fatalf("got %v, want ErrBadToken", err)
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv(DataDirEnv, "/tmp/dnsd-x")
	if got := DefaultDataDir(); got != "/tmp/dnsd-x" {
		t.Fatalf("got %q, want %q", got, "/tmp/dnsd-x")
	}
}
