package taskfile

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// isTaskFile reports whether the base name name is one a directory of
// task files loads: it ends in .yaml, .yml or .json, in any case, and is
// neither hidden nor one of the temporary or backup files editors leave
// beside the files they edit.
func isTaskFile(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") ||
		strings.HasSuffix(name, "~") || strings.HasSuffix(name, "#") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// listTaskFiles returns the paths of the task files in dir, sorted.
// Entries that are not regular files (following symbolic links) are left
// out.
func listTaskFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !isTaskFile(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			out = append(out, path)
		}
	}
	return out, nil
}

// LoadDir reads every task file of dir once, as a Watcher's first load
// does, and returns their states keyed by absolute path. Unlike the
// watcher it is all or nothing: when any file has a problem it returns
// no states and an error holding every file's problems, each a
// *ParseError where it has a position.
func LoadDir(dir string) (map[string]*catalog.State, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("tasks: directory %q: %w", dir, err)
	}
	paths, err := listTaskFiles(abs)
	if err != nil {
		return nil, fmt.Errorf("tasks: directory %q: %w", dir, err)
	}

	var errs []error
	files := make(map[string]*File, len(paths))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading task file: %w", err))
			continue
		}
		f, err := ParseFile(path, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files[path] = f
	}

	refErrs := settle(files, nil)
	for _, path := range paths {
		if err := refErrs[path]; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make(map[string]*catalog.State, len(files))
	for path, f := range files {
		out[path] = f.State
	}
	return out, nil
}

// settle checks the network uses of files, keyed by path, against each
// other and against served, the states the catalog holds for the files
// of the directory (keyed the same way). It returns the error of each
// file that fails.
//
// A file that fails no longer defines its networks for the others: the
// catalog keeps serving its older state instead, if it has one. So
// settle works in rounds, each checking every remaining file against
// what the files that remain and the served states of the others define,
// and dropping those that fail, until a round drops none. The result does
// not depend on the order of the files.
//
// TODO: settle only drops files, so when a file is dropped and its older
// served state defines a network that a file dropped in an earlier round
// uses, that file stays rejected until the next change in the directory.
//
// TODO: duplicate slots, task ids and addresses are found within one file
// only; two files of a directory may give the same service the same slot
// or two tasks the same address.
func settle(files map[string]*File, served map[string]*catalog.State) map[string]error {
	paths := slices.Sorted(maps.Keys(files))
	others := slices.Sorted(maps.Keys(served))

	errs := make(map[string]error)
	for {
		states := make([]*catalog.State, 0, len(files)+len(served))
		for _, path := range paths {
			if errs[path] == nil {
				states = append(states, files[path].State)
			}
		}
		for _, path := range others {
			if _, ok := files[path]; !ok || errs[path] != nil {
				states = append(states, served[path])
			}
		}

		known := Networks(states...)
		dropped := false
		for _, path := range paths {
			if errs[path] != nil {
				continue
			}
			if err := files[path].CheckRefs(known); err != nil {
				errs[path] = err
				dropped = true
			}
		}
		if !dropped {
			return errs
		}
	}
}
