// Package taskfile reads task files, YAML or JSON files that list
// networks, services and their tasks, and keeps the catalog in step with
// a directory of them.
//
// A task file is how a node that runs no orchestrator (or a test, or a
// quick start) tells dnsd what it serves: Parse and ParseFile turn one
// file into a catalog.State, reporting every problem with its
// file:line:column; a Watcher loads every task file of one directory,
// watches it for changes and puts each file's state into the catalog as a
// part of its own. A file that does not parse or validate is rejected
// whole and what it served before stays served.
//
// Networks may be defined in one file and used in another of the same
// directory, so a file on its own may be incomplete: ParseFile returns the
// uses it cannot check alone, and CheckRefs checks them against what the
// other files define. LoadDir does the same for a whole directory once.
//
// The package does not answer DNS and does not talk to other nodes; the
// swarm plugin serves the catalog and the cluster package gossips it.
// The format itself is described in the README's section on task files.
package taskfile
