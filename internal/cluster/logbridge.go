package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// logBridge turns memberlist's printf lines ("[WARN] memberlist: ...")
// into slog records, and counts the streams memberlist refuses: packets
// are checked by the transport before memberlist sees them, streams only
// by memberlist, which says so in its log.
type logBridge struct {
	logger *slog.Logger
}

func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&logBridge{logger: l}, "", 0)
}

// Write implements io.Writer; log.Logger calls it once per line.
func (b *logBridge) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for _, lv := range []struct {
		tag   string
		level slog.Level
	}{
		{"[DEBUG] ", slog.LevelDebug},
		{"[INFO] ", slog.LevelInfo},
		{"[WARN] ", slog.LevelWarn},
		// memberlist says ERR for what an operator cannot act on (a peer
		// gone mid push/pull): degraded, not an error in our terms
		{"[ERR] ", slog.LevelWarn},
	} {
		if rest, ok := strings.CutPrefix(line, lv.tag); ok {
			line, level = rest, lv.level
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")

	if reason := streamDropReason(line); reason != "" {
		droppedTotal.WithLabelValues(reason).Inc()
		level = slog.LevelDebug
	}
	if b.logger.Enabled(context.Background(), level) {
		b.logger.Log(context.Background(), level, "memberlist: "+line)
	}
	return len(p), nil
}

// streamDropReason classifies memberlist's complaints about inbound
// streams; "" means the line is not one.
func streamDropReason(line string) string {
	switch {
	case strings.Contains(line, `stream with unacceptable label ""`):
		return dropUnlabeled
	case strings.Contains(line, "stream with unacceptable label"):
		return dropLabel
	case strings.HasPrefix(line, "failed to receive"),
		strings.HasPrefix(line, "Failed to read remote state"),
		strings.HasPrefix(line, "Received invalid msgType"):
		return dropStream
	}
	return ""
}
