package taskfile

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
)

// maxErrors is how many problems one file reports before giving up: past
// that, more lines of output help nobody find the first mistake.
const maxErrors = 20

// ErrTooManyErrors ends the list of problems of a file that has more than
// the package reports.
var ErrTooManyErrors = errors.New("too many errors; stopped")

// ParseError is a problem in a task file, with where it is. File is the
// name the caller gave; Line and Col count from 1, Col in characters.
//
// YAML syntax errors come from the YAML library with a line only; their
// Col is the line's first non-blank character.
type ParseError struct {
	File string
	Line int
	Col  int
	Err  error
}

// Error returns "file:line:col: reason".
func (e *ParseError) Error() string {
	pos := strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col)
	if e.File != "" {
		pos = e.File + ":" + pos
	}
	return pos + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *ParseError) Unwrap() error { return e.Err }

// ParseErrors returns the *ParseError values in err, which may be a single
// *ParseError, several joined with errors.Join, or either wrapped. It
// returns nil when err holds none.
func ParseErrors(err error) []*ParseError {
	switch e := err.(type) {
	case nil:
		return nil
	case *ParseError:
		return []*ParseError{e}
	case interface{ Unwrap() []error }:
		var out []*ParseError
		for _, inner := range e.Unwrap() {
			out = append(out, ParseErrors(inner)...)
		}
		return out
	}
	return ParseErrors(errors.Unwrap(err))
}

// errorList collects the problems of one file, in position order, up to
// maxErrors.
type errorList []*ParseError

// full reports whether the list holds more problems than it reports, so
// that looking for more is wasted work.
func (l errorList) full() bool { return len(l) > maxErrors }

// err sorts the problems by position and returns them as one error: nil,
// the only *ParseError, or all of them joined, ending in ErrTooManyErrors
// when some were left out.
func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	slices.SortStableFunc(l, func(a, b *ParseError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	if len(l) > maxErrors {
		last := l[maxErrors]
		l = append(l[:maxErrors:maxErrors], &ParseError{
			File: last.File,
			Line: last.Line,
			Col:  last.Col,
			Err:  ErrTooManyErrors,
		})
	}
	if len(l) == 1 {
		return l[0]
	}
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errors.Join(errs...)
}
