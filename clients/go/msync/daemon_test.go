package msync_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
)

// daemon is a real sidecar process with the memory backend on a free
// loopback port, stopped when the test ends.
type daemon struct {
	cmd     *exec.Cmd
	address string
	frozen  bool
	clients []*msync.Client
}

// startDaemon runs $MSYNC_NODE $MSYNC_DAEMON_MAIN (set by `npm test`), or the
// repository's own node and dist/daemon/main.js.
func startDaemon(t *testing.T, flags ...string) *daemon {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	node := envOr("MSYNC_NODE", filepath.Join(root, "node_modules/.bin/node"))
	main := envOr("MSYNC_DAEMON_MAIN", filepath.Join(root, "dist/daemon/main.js"))
	args := append([]string{main, "--listen=127.0.0.1:0", "--backend=memory", "--shutdown-timeout=1s"}, flags...)
	cmd := exec.Command(node, args...)
	// If this test binary dies (a -timeout panic, a kill), so does the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start daemon %s %v: %v", node, args, err)
	}
	d := &daemon{cmd: cmd}
	t.Cleanup(d.stop)

	address := make(chan string, 1)
	ready := make(chan struct{})
	var mu sync.Mutex
	var logs strings.Builder
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			line := scanner.Text()
			mu.Lock()
			logs.WriteString(line + "\n")
			mu.Unlock()
			var entry struct{ Msg, Address string }
			if json.Unmarshal([]byte(line), &entry) != nil {
				continue
			}
			switch {
			case entry.Msg == "gRPC server listening":
				address <- entry.Address
			case strings.HasPrefix(entry.Msg, "ready"):
				close(ready)
			}
		}
	}()
	fail := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("daemon did not %s within 30 s; its log:\n%s", what, logs.String())
	}
	deadline := time.After(30 * time.Second)
	select {
	case d.address = <-address:
	case <-deadline:
		fail("listen")
	}
	select {
	case <-ready:
	case <-deadline:
		fail("get ready")
	}
	return d
}

// client connects a client, closed after the daemon stopped: a SIGTERM that
// arrives just as a client stream or connection closes can make the daemon
// wait for its full --shutdown-timeout, which is why that is 1 s here.
func (d *daemon) client(t *testing.T) *msync.Client {
	t.Helper()
	c, err := msync.New(msync.WithAddress(d.address))
	if err != nil {
		t.Fatal(err)
	}
	d.clients = append(d.clients, c)
	return c
}

// freeze stops the daemon (SIGSTOP) until thaw or the end of the test.
func (d *daemon) freeze(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	d.frozen = true
}

func (d *daemon) thaw() {
	if d.frozen {
		_ = d.cmd.Process.Signal(syscall.SIGCONT)
		d.frozen = false
	}
}

// stop resumes a frozen daemon, asks it to shut down, kills it if it has not
// exited after 10 s, and then closes the clients.
func (d *daemon) stop() {
	defer func() {
		for _, c := range d.clients {
			_ = c.Close()
		}
	}()
	d.thaw()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-exited
	}
}

func envOr(variable, fallback string) string {
	if value := os.Getenv(variable); value != "" {
		return value
	}
	return fallback
}
