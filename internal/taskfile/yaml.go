package taskfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The YAML nodes one file may make the parser visit are bounded by
// maxNodes plus nodesPerByte for each byte of the file. Aliases let a
// small file name the same subtree many times; the bound keeps such a
// file from costing more than a large honest one, which visits each node
// at most a few times and needs two bytes or more for one. They are
// variables for tests only.
var (
	maxNodes     = 1 << 20
	nodesPerByte = 4
)

// errTooComplex is the reason for a file that exceeds its budget.
var errTooComplex = errors.New("too many values after expanding aliases")

// decodeYAML reads the one YAML document of data. It returns nil and no
// error for a file that holds no document (empty, or only comments).
func decodeYAML(file string, data []byte) (*yaml.Node, *ParseError) {
	if pe := checkText(file, data); pe != nil {
		return nil, pe
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, syntaxError(file, data, err)
	}

	// the decoder reads one document at a time: a second one would be
	// ignored silently, and a task file must not hide anything
	var extra yaml.Node
	err = dec.Decode(&extra)
	switch {
	case errors.Is(err, io.EOF):
		return &doc, nil
	case err != nil:
		return nil, syntaxError(file, data, err)
	}
	return nil, &ParseError{
		File: file,
		Line: extra.Line,
		Col:  extra.Column,
		Err:  errors.New("a task file holds one YAML document; this is a second"),
	}
}

// checkText finds bytes the YAML reader refuses, because its own errors
// for them say neither line nor column.
func checkText(file string, data []byte) *ParseError {
	if bytes.HasPrefix(data, []byte("\uFEFF")) {
		data = data[3:]
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		var err error
		switch {
		case r == utf8.RuneError && size <= 1:
			err = fmt.Errorf("invalid UTF-8 byte 0x%02x (task files are UTF-8)", data[i])
		case !yamlChar(r):
			err = fmt.Errorf("control character %U is not allowed", r)
		}
		if err != nil {
			line, col := lineCol(data, i)
			return &ParseError{File: file, Line: line, Col: col, Err: err}
		}
		i += size
	}
	return nil
}

// yamlChar reports whether YAML allows r in a document.
func yamlChar(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7e:
		return true
	case r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd:
		return true
	}
	return r >= 0x10000 && r <= utf8.MaxRune
}

// lineCol returns the line and column, from 1, of byte offset off.
func lineCol(data []byte, off int) (line, col int) {
	off = min(off, len(data))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

var (
	yamlLineRe   = regexp.MustCompile(`^yaml: line ([0-9]+): `)
	yamlAnchorRe = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// syntaxError places an error of the YAML library. The library names a
// line for most syntax errors and nothing more; the column is then the
// line's first non-blank character.
func syntaxError(file string, data []byte, err error) *ParseError {
	msg := err.Error()
	line := 1
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		if parserProblem(msg) {
			// the parser, unlike the scanner, counts its lines from 0
			line++
		}
	} else if m := yamlAnchorRe.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			l, c := lineCol(data, i)
			return &ParseError{
				File: file,
				Line: l,
				Col:  c,
				Err:  fmt.Errorf("yaml syntax: %s", strings.TrimPrefix(msg, "yaml: ")),
			}
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")

	// TODO: YAML syntax errors point at a line, not a column: the YAML
	// library reports only a line number, for some errors that of the
	// construct left unfinished rather than of the problem, so the column
	// given is the first non-blank character of that line.
	lines := bytes.Split(data, []byte("\n"))
	line = max(1, min(line, len(lines)))
	text := lines[line-1]
	col := utf8.RuneCount(text[:len(text)-len(bytes.TrimLeft(text, " \t"))]) + 1
	return &ParseError{
		File: file,
		Line: line,
		Col:  col,
		Err:  fmt.Errorf("yaml syntax: %s", msg),
	}
}

// parserProblem reports whether msg is one of the YAML parser's problems
// rather than the scanner's.
func parserProblem(msg string) bool {
	for _, p := range []string{"did not find expected", "found duplicate %",
		"found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// kindName names a node's kind in errors, in the words of the format's
// documentation.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return "a value"
	}
	return "nothing"
}

// isNull reports whether n is YAML's null: absent, ~, null or empty.
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// field is one key and its value in a mapping.
type field struct {
	key *yaml.Node
	val *yaml.Node
}

// deref follows aliases and charges the value to the file's budget. An
// alias's value is returned as a copy placed where the alias is written,
// so that problems in it point at the use. It returns nil when the
// budget is spent.
func (p *parser) deref(n *yaml.Node) *yaml.Node {
	if n == nil || !p.spend(n) {
		return nil
	}
	if n.Kind != yaml.AliasNode {
		return n
	}
	t := n.Alias
	for i := 0; t != nil && t.Kind == yaml.AliasNode && i < 8; i++ {
		t = t.Alias
	}
	if t == nil || t.Kind == yaml.AliasNode {
		p.errorf(n, "alias *%s leads nowhere", n.Value)
		return nil
	}
	return p.relocate(t, n.Line, n.Column)
}

// relocate copies the tree n as if it were written at line and col, so
// that what an alias brings in is reported where the alias is. Aliases
// in the tree are copied unexpanded; deref relocates them in turn. The
// copy is charged to the budget, and cut short when the budget is spent.
func (p *parser) relocate(n *yaml.Node, line, col int) *yaml.Node {
	c := *n
	c.Line, c.Column = line, col
	if n.Kind == yaml.AliasNode || len(n.Content) == 0 {
		return &c
	}
	c.Content = make([]*yaml.Node, 0, len(n.Content))
	for _, k := range n.Content {
		if !p.spend(k) {
			break
		}
		c.Content = append(c.Content, p.relocate(k, line, col))
	}
	return &c
}

// spend charges one node, n, to the file's budget. It reports false once
// the budget is spent, having reported that at n: from then on the file
// is rejected and nothing more is reported.
func (p *parser) spend(n *yaml.Node) bool {
	if p.nodes++; p.nodes <= p.budget {
		return true
	}
	if !p.exhausted {
		p.errorAt(n, errTooComplex)
		p.exhausted = true
	}
	return false
}

// pairs returns the key-value pairs of the mapping n, what is the thing
// it describes, reporting keys that are not names and keys that repeat.
// It returns false when n is not a mapping: null (not reported) or
// another kind (reported).
func (p *parser) pairs(n *yaml.Node, what string) ([]field, bool) {
	n = p.deref(n)
	if isNull(n) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping, got %s", what, kindName(n))
		return nil, false
	}

	out := make([]field, 0, len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content) && !p.errs.full(); i += 2 {
		k := p.deref(n.Content[i])
		if k == nil {
			break
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			p.errorf(k, "%s: a key must be a name, not %s", what, kindName(k))
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.errorf(k, "key %q repeated (first at %d:%d)", k.Value, prev.Line, prev.Column)
			continue
		}
		seen[k.Value] = k
		out = append(out, field{key: k, val: n.Content[i+1]})
	}
	return out, true
}

// mapping returns the fields of the mapping n by key, reporting keys not
// in known. It returns false when n is not a mapping, as pairs does.
func (p *parser) mapping(n *yaml.Node, what string, known ...string) (map[string]field, bool) {
	fields, ok := p.pairs(n, what)
	if !ok {
		return nil, false
	}
	out := make(map[string]field, len(fields))
	for _, f := range fields {
		if !slices.Contains(known, f.key.Value) {
			p.unknownKey(f.key, what, known)
			continue
		}
		out[f.key.Value] = f
	}
	return out, true
}

// unknownKey reports a key the format does not have, suggesting the
// known key it differs from only in case.
func (p *parser) unknownKey(k *yaml.Node, what string, known []string) {
	if k.Value == "<<" {
		p.errorf(k, "merge keys (<<) are not supported")
		return
	}
	for _, name := range known {
		if strings.EqualFold(name, k.Value) {
			p.errorf(k, "unknown key %q in %s; did you mean %q?", k.Value, what, name)
			return
		}
	}
	p.errorf(k, "unknown key %q in %s (want %s)", k.Value, what, strings.Join(known, ", "))
}

// sequence returns the items of the list n. A null n is an empty list.
func (p *parser) sequence(n *yaml.Node, what string) []*yaml.Node {
	n = p.deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list, got %s", what, kindName(n))
		return nil
	}
	return n.Content
}

// scalar returns the value n holds, and false when n is null or not a
// single value (which it reports).
func (p *parser) scalar(n *yaml.Node, what string) (string, *yaml.Node, bool) {
	n = p.deref(n)
	if isNull(n) {
		return "", n, false
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: want a value, got %s", what, kindName(n))
		return "", n, false
	}
	return n.Value, n, true
}
