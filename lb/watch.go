package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long the file must be quiet before a reload, so an
// editor's write-rename-chmod burst reloads once.
const debounce = 200 * time.Millisecond

// watchFile reports changes to the file at path. It watches the
// directory, not the file, so a save that renames a new file over the
// old one is seen too. stop ends the watch; it is safe to call when err
// is not nil.
func watchFile(path string, log *slog.Logger) (changes <-chan struct{}, stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, func() {}, fmt.Errorf("watching config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		w.Close()
		return nil, func() {}, fmt.Errorf("watching config: %w", err)
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return nil, func() {}, fmt.Errorf("watching config dir: %w", err)
	}

	out := make(chan struct{}, 1)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		forward(w, abs, out, done, log)
	}()
	stop = func() {
		close(done)
		w.Close()
		<-finished
	}
	return out, stop, nil
}

// forward turns the directory's events for file into debounced signals
// on out until done closes.
func forward(w *fsnotify.Watcher, file string, out chan<- struct{}, done <-chan struct{},
	log *slog.Logger) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-done:
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == file && !ev.Has(fsnotify.Chmod) {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn("config watch error", "err", err)
		case <-timer.C:
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}
}
