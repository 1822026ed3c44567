package taskfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// FuzzParse checks that Parse never panics, that every error it returns
// says where, and that what it accepts keeps the format's rules.
func FuzzParse(f *testing.F) {
	archives, _ := filepath.Glob(filepath.Join("testdata", "parse", "*.txtar"))
	for _, path := range archives {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range parseArchive(data).files {
			if file.name != "want" {
				f.Add(file.data)
			}
		}
	}
	examples, _ := filepath.Glob(filepath.Join("..", "..", "examples", "tasks.d", "*"))
	for _, path := range examples {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("services: [{name: web, tasks: &t [{slot: 1, addresses: *t}]}]\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Parse("f.yaml", data)
		if err != nil {
			checkFuzzError(t, st, err)
			return
		}
		checkFuzzState(t, st)

		file, err := ParseFile("f.yaml", data)
		if err != nil {
			t.Fatalf("Parse accepted what ParseFile rejects: %v", err)
		}
		if err := file.CheckRefs(nil); err != nil {
			t.Fatalf("Parse accepted what CheckRefs rejects: %v", err)
		}
	})
}

func checkFuzzError(t *testing.T, st *catalog.State, err error) {
	t.Helper()
	if st != nil {
		t.Fatalf("got a state with error %v", err)
	}
	problems := ParseErrors(err)
	if len(problems) == 0 || len(problems) > maxErrors+1 {
		t.Fatalf("got %d problems in %v, want 1 to %d", len(problems), err, maxErrors+1)
	}
	for _, pe := range problems {
		if pe.File != "f.yaml" || pe.Line < 1 || pe.Col < 1 || pe.Err == nil {
			t.Fatalf("got problem %#v, want file f.yaml and a position", pe)
		}
	}
}

func checkFuzzState(t *testing.T, st *catalog.State) {
	t.Helper()
	label := func(what, s string) {
		if checkLabel(s) != nil || s != strings.ToLower(s) {
			t.Fatalf("accepted %s %q, want a lower-case DNS label", what, s)
		}
	}
	networks := make(map[string]bool)
	for _, n := range st.Networks {
		label("network name", n.Name)
		if len(n.Subnets) == 0 {
			t.Fatalf("accepted network %q without subnet", n.Name)
		}
		networks[n.Name] = true
	}
	for _, s := range st.Services {
		label("service name", s.Name)
		if s.Mode != catalog.ModeDNSRR && s.Mode != catalog.ModeVIP {
			t.Fatalf("accepted endpoint mode %q", s.Mode)
		}
		for _, p := range s.Ports {
			label("port name", p.Name)
			if p.Port == 0 || (p.Protocol != "tcp" && p.Protocol != "udp") {
				t.Fatalf("accepted port %+v", p)
			}
		}
	}
	for _, task := range st.Tasks {
		label("task id", task.ID)
		if task.Slot < 1 || len(task.Addrs) == 0 {
			t.Fatalf("accepted task %+v", task)
		}
		for _, a := range task.Addrs {
			if !networks[a.Network] || !a.IP.IsValid() {
				t.Fatalf("accepted address %+v", a)
			}
		}
	}
}
