// Package events prints the peers' machine-readable event lines: one JSON
// object per line on stdout, each stamped with CLOCK_MONOTONIC in
// nanoseconds (the clock Node's process.hrtime.bigint() reads on Linux, so
// the harness can subtract timestamps taken in different processes) and the
// wall time.
package events

import (
	"encoding/json"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var mu sync.Mutex

// MonotonicNs reads CLOCK_MONOTONIC. Go's time package keeps a monotonic
// reading too, but only relative to process start; the harness needs the
// system-wide value.
func MonotonicNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// Emit writes {"event": event, "mono_ns": ..., "wall": ..., ...fields}.
// The timestamp is taken before the line is encoded.
func Emit(event string, fields map[string]any) {
	mono := MonotonicNs()
	line := map[string]any{"event": event, "mono_ns": mono, "wall": time.Now().UTC().Format(time.RFC3339Nano)}
	for k, v := range fields {
		line[k] = v
	}
	b, err := json.Marshal(line)
	if err != nil {
		panic(err)
	}
	mu.Lock()
	defer mu.Unlock()
	_, _ = os.Stdout.Write(append(b, '\n'))
}
