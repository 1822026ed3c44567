package taskfile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the want files of testdata/parse")

// TestGolden parses the input of each archive in testdata/parse and holds
// the result against its want file: the state as JSON, or the error text.
// An archive with several input files is a directory: its files are
// loaded as LoadDir loads them and the want file holds every state.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "parse", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no archives in testdata/parse")
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(data)
			got := goldenResult(t, a)
			if *update {
				a.setFile("want", got)
				if err := os.WriteFile(path, a.format(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, ok := a.file("want")
			if !ok {
				t.Fatalf("%s has no want file; run go test -update", path)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// goldenResult runs the inputs of a: one file through Parse, several
// through ParseFile and settle, as a directory.
func goldenResult(t *testing.T, a archive) []byte {
	t.Helper()
	var inputs []archiveFile
	for _, f := range a.files {
		if f.name != "want" {
			inputs = append(inputs, f)
		}
	}
	if len(inputs) == 1 {
		st, err := Parse(inputs[0].name, inputs[0].data)
		if err != nil {
			return []byte(err.Error() + "\n")
		}
		return marshalState(t, st)
	}

	dir := t.TempDir()
	for _, f := range inputs {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	states, err := LoadDir(dir)
	if err != nil {
		return []byte(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "") +
			"\n")
	}
	var b bytes.Buffer
	for _, f := range inputs {
		b.WriteString("# " + f.name + "\n")
		b.Write(marshalState(t, states[filepath.Join(dir, f.name)]))
	}
	return b.Bytes()
}

func marshalState(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}
